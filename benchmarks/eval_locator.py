"""Scores the head locator on its test exams (HC18 measures), its refusals, and the raw path.

    python benchmarks/eval_locator.py [--locator saved_models/fetal_head_locator]
        [--recipe recipes/head_locator_hc18.yaml] [--data-root ../shared/data]
        [--synthesis saved_models/fetal_hc18_v2 --mr-cache runs/preset_v2_data]
        [--out docs/locator_results.json] [--figure docs/figures/locator_scores.png]
        [--split test|val|train]

``--split val`` scores the validation exams instead (part 1 only: how a candidate is chosen
without looking at the test exams); it writes only the JSON. ``--split train`` does the same
on the training exams (how well the locator fits what it was trained on, beside validation).

1. Test exams (the recipe's split: 20 % of the exams of us/hc18 and of us/hc18_more, never
   seen in training): DSC, ADF, DF, HD (``usmr_tf.metrics.head_measures``) against the HC18
   reference ellipse (the annotation's ellipse scaled to the HC of HC18's CSV) and that HC;
   also DSC / HD against the unscaled annotation ellipse; the share refused.
2. Score distribution: the test heads against inputs with no fetal head it never saw in
   training -- MR slices of the CRL atlas (run time only, never a training negative),
   noise, blank frames, photograph-like clutter (other seeds than training), tiny heads
   (test images shrunk into a large frame) and heads mostly outside the frame -- with the
   refusal rule's outcome for each kind.
3. End to end (with ``--synthesis`` and ``--mr-cache``): the us/hc18 test images synthesized
   after automatic alignment and after annotation alignment, in the aligned frame, scored
   the same way (SWD against the prepared real MR test split, diversity).
Prints a table and writes the JSON. Research measurements, not clinical ones.
"""

import argparse
import json
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from usmr_tf.data.hc18 import load_annotation  # noqa: E402
from usmr_tf.data.images import load_image  # noqa: E402
from usmr_tf.metrics.head_measures import hc18_measures  # noqa: E402
from usmr_tf.models.head_locator.head_locator_presets import LocatorRunner  # noqa: E402
from usmr_tf.metrics.head_measures import dice, hausdorff  # noqa: E402
from usmr_tf.models.head_locator.head_locator_preprocessor import (  # noqa: E402
    hc18_table, negative_images, reference_ellipse)
from usmr_tf.models.head_locator.head_locator_training import (  # noqa: E402
    load_locator_recipe, locator_split)


MEASURES = ("dsc", "adf_mm", "df_mm", "hd_mm", "dsc_outline", "hd_outline_mm")


def summary(values):
    values = np.asarray(values, np.float64)
    if values.size == 0:
        return None
    return {"mean": float(values.mean()), "sd": float(values.std(ddof=1)) if values.size > 1
            else 0.0, "median": float(np.median(values)), "min": float(values.min()),
            "max": float(values.max()), "n": int(values.size)}


def _params(ellipse):
    return (ellipse.center[1], ellipse.center[0], ellipse.a, ellipse.b, ellipse.angle)


def evaluate_test(runner, pairs):
    """HC18 measures against the reference ellipse (the drawn outline's ellipse scaled to
    HC18's published HC: the organisers' ellipse has that HC, the fit to the drawn outline is
    +0.88 mm longer); ADF/DF against the published HC; `dsc_outline`/`hd_outline_mm`
    against the unscaled fit to the drawn outline, for comparison."""
    rows, tables = [], {}
    for image_path, ann in pairs:
        image = load_image(image_path)
        table = tables.setdefault(image_path.parent, hc18_table(image_path))
        pixel_size, hc = table[image_path.name]
        ref_e = _params(reference_ellipse(image_path, ann, table))
        drawn = _params(load_annotation(ann))
        t = time.perf_counter()
        loc = runner.locate(image)
        seconds = time.perf_counter() - t
        row = {"file": f"{image_path.parent.parent.name}/{image_path.name}", "score": loc.score,
               "refusal": loc.refusal, "seconds": seconds}
        if loc.found:
            row.update(hc18_measures(image.shape, loc.ellipse, ref_e, pixel_size, hc))
            row["dsc_outline"] = dice(image.shape, loc.ellipse, drawn)
            row["hd_outline_mm"] = hausdorff(loc.ellipse, drawn) * pixel_size
        rows.append(row)
    return rows


def _shrunk(image, factor, canvas=(540, 800), seed=0):
    from scipy import ndimage

    small = ndimage.zoom(image, factor, order=1)
    out = np.zeros(canvas, np.float32)
    rng = np.random.default_rng(seed)
    r = int(rng.integers(0, canvas[0] - small.shape[0]))
    c = int(rng.integers(0, canvas[1] - small.shape[1]))
    out[r:r + small.shape[0], c:c + small.shape[1]] = small
    return out


def _mostly_out(image, ellipse):
    """The image shifted so that the head's centre sits beyond the left edge by a third of a."""
    (cy, cx), a = ellipse.center, ellipse.a
    shift = int(round(cx + a / 3))
    out = np.zeros_like(image)
    out[:, :image.shape[1] - shift] = image[:, shift:]
    return out


def _half_out(image, ellipse):
    """Shifted so that the head's centre sits on the left edge (half the head visible)."""
    shift = int(round(ellipse.center[1]))
    out = np.zeros_like(image)
    out[:, :image.shape[1] - shift] = image[:, shift:]
    return out


def _mr_png_like(paths, per_volume, rng):
    import nibabel as nib

    out = []
    for path in paths:
        data = np.squeeze(np.asarray(nib.load(str(path)).dataobj, np.float32))
        for i in range(per_volume):
            axis = i % 3
            index = int(rng.uniform(0.35, 0.65) * data.shape[axis])
            cut = np.take(data, index, axis=axis)
            lo, hi = np.percentile(cut, [1, 99.5])
            if hi > lo:
                out.append(np.clip((cut - lo) / (hi - lo) * 255, 0, 255))
    return out


def negatives(data_root, test_pairs, seed=1234):
    """{kind: [grey images]} of inputs with no fetal head (or one that cannot be aligned)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    root = pathlib.Path(data_root)
    crl = sorted((root / "mr/crl_sta2017_niftymic").glob("STA??.nii.gz"))
    mr = _mr_png_like(crl, 5, rng)  # the CRL atlas: never a training negative
    mr = [ndimage.zoom(m, min(540 / m.shape[0], 800 / m.shape[1]), order=1) for m in mr]
    generated = negative_images(60, rng)
    kinds = {"mr_slice": mr, "noise": generated[1::4], "blank": generated[2::4],
             "photo_like": generated[3::4]}
    heads = [(load_image(p), load_annotation(a)) for p, a in test_pairs[:20]]
    kinds["tiny_head"] = [_shrunk(img, 48 / (2 * e.a), seed=i) for i, (img, e) in enumerate(heads)]
    kinds["mostly_outside"] = [_mostly_out(img, e) for img, e in heads]
    kinds["half_outside"] = [_half_out(img, e) for img, e in heads]
    return kinds


def evaluate_negatives(runner, kinds):
    out = {}
    for kind, images in kinds.items():
        locs = [runner.locate(img) for img in images]
        out[kind] = {"n": len(locs), "refused": int(sum(not loc.found for loc in locs)),
                     "scores": [round(loc.score, 4) for loc in locs],
                     "reasons": sorted({(loc.refusal or "located").split(" (")[0]
                                        for loc in locs})}
    return out


def end_to_end(runner, synthesis_dir, mr_cache, pairs):
    from usmr_tf.data.cache import load_prepared
    from usmr_tf.export import synthesis
    from usmr_tf.export.runtimes import SavedModelRunner
    from usmr_tf.metrics.diversity import output_diversity
    from usmr_tf.metrics.swd import swd

    model = SavedModelRunner(synthesis_dir)
    real, _ = load_prepared(mr_cache, "test", modality="mr")
    us_auto, us_ann, kept = [], [], []
    for image_path, _ in pairs:
        loc = runner.locate(load_image(image_path))
        if not loc.found:
            continue
        us_auto.append(synthesis.located_image_slice(image_path, loc, model.image_size)[0])
        us_ann.append(synthesis.aligned_image_slice(image_path, model.image_size)[0])
        kept.append(image_path.name)
    results = {"n": len(kept), "real_mr_test_slices": int(len(real))}
    for name, us in (("raw_auto", us_auto), ("annotation", us_ann)):
        us = np.stack(us)
        mr = synthesis.predict_batched(model, us, 16)
        results[name] = {"swd": swd(mr, real)["mean"], "diversity": output_diversity(us, mr),
                         "identity_swd": swd(us, real)["mean"]}
    results["swd_ratio_auto_over_annotation"] = (results["raw_auto"]["swd"]
                                                 / results["annotation"]["swd"])
    return results


def figure(test_rows, neg, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    bins = np.linspace(0, 1, 41)
    ax.hist([r["score"] for r in test_rows], bins=bins, alpha=0.7, label="test heads")
    for kind, res in neg.items():
        ax.hist(res["scores"], bins=bins, alpha=0.5, histtype="step", linewidth=2, label=kind)
    ax.set_xlabel("locator score")
    ax.set_ylabel("images")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    ax.set_title("Head locator score distribution - research use only, not for diagnosis",
                 fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--locator", default=str(ROOT / "saved_models/fetal_head_locator"))
    parser.add_argument("--recipe", default=str(ROOT / "recipes/head_locator_hc18.yaml"))
    parser.add_argument("--data-root", default=str(ROOT.parent / "shared/data"))
    parser.add_argument("--synthesis", default=None)
    parser.add_argument("--mr-cache", default=None)
    parser.add_argument("--out", default=str(ROOT / "docs/locator_results.json"))
    parser.add_argument("--figure", default=str(ROOT / "docs/figures/locator_scores.png"))
    parser.add_argument("--split", choices=("test", "val", "train"), default="test",
                        help="val: the validation exams, measures only (model selection); "
                             "train: the training exams, measures only (the fit's own error, "
                             "beside validation's: a capacity check)")
    args = parser.parse_args(argv)
    recipe = load_locator_recipe(args.recipe, [f"data.data_root={args.data_root}"])
    split = locator_split(recipe)
    runner = LocatorRunner(args.locator)
    rows = evaluate_test(runner, split[args.split])
    found = [r for r in rows if "dsc" in r]
    result = {"locator": f"{runner.model_dir.name} v{runner.version}",
              "thresholds": runner.thresholds, "test_images": len(rows),
              "split": args.split,
              "test_exams_note": "20 % of the exams of us/hc18 and us/hc18_more (split.json)"
              if args.split == "test" else {"val": "validation: 10 % of the training exams",
                                            "train": "the training exams themselves"}[args.split],
              "refused": len(rows) - len(found),
              **{k: summary([r[k] for r in found]) for k in MEASURES},
              "seconds_per_image": summary([r["seconds"] for r in rows]),
              "per_image": rows}
    print(f"test images {len(rows)}, refused {result['refused']}")
    for k in MEASURES:
        s = result[k]
        print(f"  {k:7s} mean {s['mean']:.4f} sd {s['sd']:.4f} median {s['median']:.4f} "
              f"max {s['max']:.4f}")
    if args.split == "test":
        refusals_and_end_to_end(args, runner, split, rows, result)
    pathlib.Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out} - research measurements, not clinical ones")


def refusals_and_end_to_end(args, runner, split, rows, result):
    """Parts 2 and 3 (refusals, score figure, end to end): the test exams only."""
    neg = evaluate_negatives(runner, negatives(args.data_root, split["test"]))
    result["negatives"] = neg
    for kind, res in neg.items():
        print(f"  {kind:14s} refused {res['refused']}/{res['n']}  max score "
              f"{max(res['scores']):.3f}  {res['reasons']}")
    heads = np.array([r["score"] for r in rows])
    result["score_quantiles_test_heads"] = {q: float(np.quantile(heads, q / 100))
                                            for q in (0, 1, 5, 50)}
    if args.synthesis and args.mr_cache:
        hc18_test = [p for p in split["test"] if p[0].parent.parent.name == "hc18"]
        result["end_to_end"] = end_to_end(runner, args.synthesis, args.mr_cache, hc18_test)
        print("  end to end:", json.dumps({k: v for k, v in result["end_to_end"].items()}))
    figure(rows, neg, pathlib.Path(args.figure))
    print(f"wrote {args.figure}")


if __name__ == "__main__":
    main()
