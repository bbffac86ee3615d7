"""One call that scores a synthesized MR set with every metric of `usmr_tf.metrics`.

Used by `usmr evaluate` and the Table 1 reproduction. Research output, not for diagnosis.
"""

import numpy as np

from usmr_tf.errors import DataError
from usmr_tf.metrics import deformation, image_metrics, outline, realism, structure, swd
from usmr_tf.metrics.checks import as_image_batch
from usmr_tf.metrics.diversity import mean_pairwise_l1, output_diversity

# name -> (direction, short description) for tables
METRIC_INFO = {
    "diversity": ("~real MR", "output diversity: pairwise L1 of outputs / of inputs; 0 = one "
                  "output for every input (collapse), real MR sets ~0.6-0.7"),
    "deformation": ("lower", "FFD Jacobian score vs plane-matched real MR, [0, 1]"),
    "registration_nmi": ("higher", "NMI after registration (1 unrelated, 2 identical): low = "
                         "deformation score unreliable"),
    "swd": ("lower", "sliced Wasserstein distance to the real MR set (x1e3)"),
    "realism": ("0.5", "realism test: accuracy of a CNN telling real MR from these (5-fold "
                "C2ST, mean ± sd over repeats); 0.5 = cannot tell, 1 = always tells"),
    "structure": ("higher", "edge correlation of input US and synth MR, [-1, 1]"),
    "outline": ("higher", "head kept: Dice of the synth MR's head with its US's intracranial "
                "region, [0, 1]; aligned US passed through ~0.86"),
    "mae": ("lower", "mean absolute error vs paired phantom MR"),
    "psnr": ("higher", "PSNR (dB) vs paired phantom MR"),
    "ssim": ("higher", "SSIM vs paired phantom MR"),
}


def evaluate_synthesis(us, synth, real_mr, paired_mr=None, with_deformation=True, top_k=3,
                       registration=deformation.RegistrationConfig(), swd_seed=0,
                       progress=None, realism_config=None,
                       outline_scale=outline.DEFAULT_SCALE, realism_progress=None):
    """Returns `{"metrics": {name: value}, "per_image": {...}}` for one synthesized set.

    `progress(1)` (optional) is called after each image's deformation score, the slow part;
    `realism_progress(1)` after each repeat of the realism test.

    `us`, `synth`: `[N, H, W, 1]` (pairs); `real_mr`: `[M, H, W, 1]` unpaired real MR (the SWD
    reference and the plane-matching candidates); `paired_mr`: optional ground truth `[N, ...]`.
    `realism_config` (a `realism.RealismConfig`): also run the realism test (synth vs
    `real_mr`; `realism`, with `realism_ci` = [low, high]; with `repeats` > 1 the mean, with
    `realism_sd` and every repeat's `realism_per_repeat`); skipped below 5 images a class.
    `outline_scale`: the outline check's head scale (`outline.outline_scores`; the default
    fits US aligned like HC18); None leaves the check out (inputs aligned another way).
    """
    us = as_image_batch(us, "us")
    synth = as_image_batch(synth, "synthesized MR")
    real_mr = as_image_batch(real_mr, "real MR")
    if us.shape != synth.shape:
        raise DataError(f"{synth.shape[0]} synthesized images for {us.shape[0]} US images", "us")
    metrics, per_image = {}, {}
    if len(us) >= 2 and mean_pairwise_l1(us) > 0:
        metrics["diversity"] = output_diversity(us, synth)
    if with_deformation:
        result = deformation.deformation_scores(synth, real_mr, top_k=top_k, config=registration,
                                                progress=progress)
        metrics["deformation"] = result["mean"]
        metrics["deformation_std"] = result["std"]
        per_image["deformation"] = result["scores"].tolist()
        per_image["matched_mr_index"] = result["matched"].tolist()
        per_image["registration_nmi"] = result["nmi"].tolist()
        metrics["registration_nmi"] = float(result["nmi"].mean())
    distance = swd.swd(synth, real_mr, seed=swd_seed)
    metrics["swd"] = distance["mean"]
    metrics["swd_levels"] = distance["levels"]
    if _realism_runs(len(synth), len(real_mr), realism_config):
        test = realism.realism_test(real_mr, synth, realism_config, progress=realism_progress)
        metrics["realism"] = test["accuracy"]
        metrics["realism_ci"] = [test["ci_low"], test["ci_high"]]
        metrics["realism_n"] = test["n_per_class"]
        if test["accuracy_sd"] is not None:
            metrics["realism_sd"] = test["accuracy_sd"]
            metrics["realism_per_repeat"] = test["repeat_accuracy"]
    scores = structure.structure_scores(us, synth)
    metrics["structure"] = float(scores.mean())
    per_image["structure"] = scores.tolist()
    if outline_scale is not None:
        kept = outline.outline_scores(us, synth, scale=outline_scale)
        if np.isfinite(kept).any():
            metrics["outline"] = float(np.nanmean(kept))
        per_image["outline"] = kept.tolist()
    if paired_mr is not None:
        paired = as_image_batch(paired_mr, "paired MR")
        if paired.shape != synth.shape:
            raise DataError(
                f"paired MR has shape {paired.shape[1:]} x {paired.shape[0]}, expected "
                f"{synth.shape[1:]} x {synth.shape[0]} (one per US image)", "paired MR")
        metrics["mae"] = image_metrics.mae(synth, paired)
        metrics["psnr"] = image_metrics.psnr(synth, paired)
        metrics["ssim"] = image_metrics.ssim(synth, paired)
        per_image["psnr"] = image_metrics.psnr_per_image(synth, paired).tolist()
        per_image["ssim"] = image_metrics.ssim_per_image(synth, paired).tolist()
    return {"metrics": metrics, "per_image": per_image}


def _realism_runs(n_images, n_real, config):
    """Whether a row's realism test runs: asked for, and `config.folds` images a class."""
    return config is not None and min(n_images, n_real) >= config.folds


def realism_test_count(n_us, n_real, config, n_reference=None, with_references=True):
    """How many realism tests (rows x repeats) `evaluate_synthesis` on `n_us` images plus
    `evaluate_references` (identity; real MR when `n_reference` is given) run against
    `n_real` real MR slices: a progress bar's total."""
    rows = [n_us]
    if with_references:
        rows.append(n_us)
        if n_reference is not None:
            rows.append(min(n_reference, n_us))  # the real-MR row's cut, as below
    runs = sum(_realism_runs(n, n_real, config) for n in rows)
    return runs * config.repeats if runs else 0


def evaluate_references(us, real_mr, reference_mr=None, **kwargs):
    """The two rows every score is read against (issue 11): `identity` (the US passed through
    unchanged as the "synthesized MR") and, when `reference_mr` (real MR of OTHER subjects than
    `real_mr`) is given, `real MR` (those slices scored as if synthesized: the floor).

    For the real-MR row `us` is cut to as many images as there are reference slices (its
    diversity is the reference set's pairwise L1 over the US set's; its structure and outline
    scores compare unrelated images and are left out). `kwargs` go to `evaluate_synthesis`.
    """
    us = as_image_batch(us, "us")[..., None].astype(np.float32)
    rows = {"identity": evaluate_synthesis(us, us, real_mr, **kwargs)["metrics"]}
    if reference_mr is not None:
        ref = as_image_batch(reference_mr, "reference MR")[..., None].astype(np.float32)
        n = min(len(ref), len(us))
        kwargs = {k: v for k, v in kwargs.items() if k != "paired_mr"}
        kwargs["outline_scale"] = None
        metrics = evaluate_synthesis(us[:n], ref[:n], real_mr, **kwargs)["metrics"]
        metrics.pop("structure", None)
        rows["real MR"] = metrics
    return rows


def format_comparison(rows, names=("diversity", "swd", "realism", "deformation", "structure",
                                   "outline", "psnr", "ssim")):
    """Rows (model or reference name -> metrics) side by side, one column per metric."""
    names = [n for n in names if any(n in m for m in rows.values())]
    header = ["", *names]
    lines = [header]
    for row, metrics in rows.items():
        lines.append([row, *(_cell(metrics, n) for n in names)])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    better = {n: METRIC_INFO[n][0] for n in names}
    text.append("better: " + ", ".join(f"{n} {d}" for n, d in better.items()))
    return "\n".join(text)


def _cell(metrics, name):
    """`0.618`, or `0.618±0.048` for a repeated realism test; `-` when missing."""
    if finite_or_none(metrics.get(name)) is None:
        return "-"
    text = f"{metrics[name]:.3f}"
    if name == "realism" and finite_or_none(metrics.get("realism_sd")) is not None:
        text += f"±{metrics['realism_sd']:.3f}"
    return text


def format_table(metrics):
    """A plain-text table of the scalar metrics with their direction."""
    rows = [("metric", "value", "better", "what")]
    for name, (direction, what) in METRIC_INFO.items():
        if name in metrics:
            value = metrics[name]
            text = f"{value:.4f}"
            if name == "deformation" and "deformation_std" in metrics:
                text += f" ± {metrics['deformation_std']:.4f}"
            if name == "realism" and "realism_sd" in metrics:
                text += f" ± {metrics['realism_sd']:.4f}"
            if name == "realism" and "realism_ci" in metrics:
                low, high = metrics["realism_ci"]
                text += f" [{low:.2f}, {high:.2f}]"
            rows.append((name, text, direction, what))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def finite_or_none(value):
    """JSON-safe copy: NaN/Inf -> None, numpy scalars -> Python."""
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
