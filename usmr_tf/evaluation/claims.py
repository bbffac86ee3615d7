"""The paper's Table 1 claims, tested over seeds and test images (issue 16).

Pure numpy/scipy: no TensorFlow, no training. `usmr_tf.evaluation.seeded` feeds it the cells
of the seeded Table 1 and writes what it returns. Research output, not for diagnosis.

The paper (Jiao et al. 2019, §3.2) reads its Table 1 as "the proposed method performs better
than the other possible solutions [AE, GAN, CycleGAN], and also supports the inclusion of each
proposed term [bi-latent, structural, attention]". Each of those six statements is one claim
here, tested on every metric that has a direction:

- per-image metrics (deformation, MAE, PSNR, SSIM, structure): the difference Ours - other on
  the same test image and seed index, `[seeds, images]`; its mean and a 95 % interval from a
  two-level bootstrap (seeds resampled, then images), so the interval carries both the
  seed-to-seed and the image-to-image spread;
- set metrics (SWD, realism test): one value per seed, so the difference per seed index and a
  95 % t interval over the seeds (df = seeds - 1: with 3 seeds t = 4.30, wide on purpose).

Verdict: **holds** when the interval lies wholly on the side the paper claims (Ours better),
**does not hold** when it lies wholly on the other side (Ours worse), **within noise** when
it contains 0.
"""

import math

import numpy as np

# The paper's own Table 1 (MOS of experts / beginners, deformation), for the page beside ours.
PAPER_TABLE1 = {
    "mos_expert": {"ae": 1.00, "gan": 2.05, "cyclegan": 2.50, "ours_no_bilatent": 3.05,
                   "ours_no_struct": 3.45, "ours_no_att": 3.30, "ours": 3.90, "real": 4.35},
    "mos_beginner": {"ae": 1.01, "gan": 2.75, "cyclegan": 3.42, "ours_no_bilatent": 3.69,
                     "ours_no_struct": 3.87, "ours_no_att": 3.65, "ours": 4.08, "real": 4.23},
    "deformation": {"ae": 0.97, "gan": 0.78, "cyclegan": 0.66, "ours_no_bilatent": 0.55,
                    "ours_no_struct": 0.65, "ours_no_att": 0.47, "ours": 0.46, "real": 0.00},
}

# (claim key, the model the paper says is better, the one it says is worse, wording)
CLAIMS = (
    ("ours_vs_ae", "ours", "ae", "Ours better than AE"),
    ("ours_vs_gan", "ours", "gan", "Ours better than GAN"),
    ("ours_vs_cyclegan", "ours", "cyclegan", "Ours better than CycleGAN"),
    ("bilatent_helps", "ours", "ours_no_bilatent", "bi-latent term helps (Ours vs w/o bi-lat)"),
    ("struct_helps", "ours", "ours_no_struct", "structural term helps (Ours vs w/o struct.)"),
    ("att_helps", "ours", "ours_no_att", "attention helps (Ours vs w/o att.)"),
)
# Not the paper's: does the shipped configuration's DiffAugment help the full model?
EXTRA_CLAIMS = (
    ("diffaug_helps", "ours_da", "ours", "DiffAugment helps (Ours + DiffAug vs Ours; not in "
     "the paper)"),
)

# metric -> True when higher is better (metrics without a direction, e.g. diversity, absent)
DIRECTION = {"deformation": False, "mae": False, "psnr": True, "ssim": True, "structure": True,
             "swd": False, "swd_left_out": False, "realism": False, "realism_left_out": False}
PER_IMAGE = ("deformation", "mae", "psnr", "ssim", "structure")

HOLDS, FAILS, NOISE = "holds", "does not hold", "within noise"


def bootstrap_interval(diff, n_boot=2000, seed=0, level=0.95):
    """Mean of `diff` `[seeds, images]` and its two-level bootstrap interval (seeds, then
    images, resampled with replacement). Returns (mean, low, high)."""
    diff = np.asarray(diff, dtype=np.float64)
    if diff.ndim != 2 or diff.size == 0:
        raise ValueError(f"expected [seeds, images] differences, got shape {diff.shape}")
    n_seeds, n_images = diff.shape
    rng = np.random.default_rng(seed)
    seeds = rng.integers(n_seeds, size=(n_boot, n_seeds))
    images = rng.integers(n_images, size=(n_boot, n_seeds, n_images))
    means = diff[seeds[..., None], images].mean(axis=(1, 2))
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(diff.mean()), float(low), float(high)


def t_interval(diff, level=0.95):
    """Mean of the per-seed differences `diff` `[seeds]` and its t interval (df = n - 1).
    With one seed the interval is infinite (nothing can be said)."""
    from scipy import stats

    diff = np.asarray(diff, dtype=np.float64).ravel()
    if diff.size == 0:
        raise ValueError("no differences to compare")
    mean = float(diff.mean())
    if diff.size < 2:
        return mean, -math.inf, math.inf
    half = float(stats.t.ppf(0.5 + level / 2, diff.size - 1) * diff.std(ddof=1)
                 / math.sqrt(diff.size))
    return mean, mean - half, mean + half


def verdict(low, high, higher_is_better):
    """`holds` / `does not hold` / `within noise` for an interval of (claimed better - other)."""
    if higher_is_better:
        return HOLDS if low > 0 else FAILS if high < 0 else NOISE
    return HOLDS if high < 0 else FAILS if low > 0 else NOISE


def compare(better, other, metric, n_boot=2000, seed=0):
    """One claim on one metric. `better`, `other`: `[seeds, images]` per-image values (metrics
    in `PER_IMAGE`) or `[seeds]` set values, seed index i of one paired with seed index i of
    the other. Returns a dict with the difference (better - other), its interval and verdict."""
    if metric not in DIRECTION:
        raise ValueError(f"metric {metric!r} has no direction; choose from {sorted(DIRECTION)}")
    a, b = np.asarray(better, dtype=np.float64), np.asarray(other, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"{metric}: shapes differ ({a.shape} vs {b.shape})")
    if a.ndim == 2:
        mean, low, high = bootstrap_interval(a - b, n_boot=n_boot, seed=seed)
        method = "two-level bootstrap over seeds and images"
    else:
        mean, low, high = t_interval(a - b)
        method = "t interval over seeds"
    return {"metric": metric, "difference": mean, "ci": [low, high],
            "verdict": verdict(low, high, DIRECTION[metric]), "method": method,
            "n_seeds": int(a.shape[0]), "n_images": int(a.shape[1]) if a.ndim == 2 else None,
            "higher_is_better": DIRECTION[metric]}


def claim_values(cells, metric):
    """`[seeds, images]` (per-image metric) or `[seeds]` of one model, from seeded cells
    `{seed: {"metrics": {...}, "per_image": {...}}}` (seeds in ascending order), or None when
    a seed lacks the metric."""
    rows = []
    for seed in sorted(cells):
        cell = cells[seed]
        if metric in PER_IMAGE:
            values = cell.get("per_image", {}).get(metric)
        else:
            values = cell.get("metrics", {}).get(metric)
        if values is None:
            return None
        rows.append(values)
    return np.asarray(rows, dtype=np.float64) if rows else None


def judge_claims(cells_by_model, metrics, claims=CLAIMS + EXTRA_CLAIMS, n_boot=2000):
    """Every claim on every metric both models have. `cells_by_model`: `{model: {seed: cell}}`;
    only seeds both models have are paired. Returns `{claim key: {"text", "better", "other",
    "by_metric": {metric: compare(...)}}}` (claims whose models are missing are left out)."""
    out = {}
    for key, better, other, text in claims:
        if better not in cells_by_model or other not in cells_by_model:
            continue
        seeds = sorted(set(cells_by_model[better]) & set(cells_by_model[other]))
        if not seeds:
            continue
        by_metric = {}
        for metric in metrics:
            a = claim_values({s: cells_by_model[better][s] for s in seeds}, metric)
            b = claim_values({s: cells_by_model[other][s] for s in seeds}, metric)
            if a is None or b is None or a.shape != b.shape:
                continue
            by_metric[metric] = compare(a, b, metric, n_boot=n_boot)
        out[key] = {"text": text, "better": better, "other": other, "seeds": seeds,
                    "by_metric": by_metric}
    return out
