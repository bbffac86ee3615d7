"""What the deformation score rewards: made-up "synthesized MR" sets scored like a model (issue 18).

The deformation score (`usmr_tf.metrics.deformation`, paper §3.2) registers each image to a
plane-matched real MR with an FFD and reports how much it had to warp. This benchmark scores
images that no model made, from the test US of a prepared dataset, against that split's real MR:

| row | image |
|---|---|
| identity | the US passed through (the reference row of `usmr evaluate`) |
| blurred US | the US with a Gaussian blur (sigma `--blur` px) inside the head |
| half-contrast US | the US's interior at half its contrast (0.5 x) |
| inverted US | the US's interior with its brightness reversed (-1 x): anechoic fluid bright, as in T2 MR |
| blank head | the head's silhouette, one grey level inside, nothing in it |
| real MR | the train split's real MR (other subjects), the floor of `usmr evaluate` |

and prints deformation (mean ± sd over images), as published and with both images
rank-equalised before registration (`RegistrationConfig(equalise=True)`: blind to contrast),
beside SWD to the same real MR, and any `--model` exports' own rows for comparison.

    .venv/bin/python benchmarks/deformation_references.py --data ../runs/preset_v3_data64 \\
        [--model EXPORT ...] [--json F] [--figure F.png]

`--figure`: six test cases, one row a set, each panel with its own score (published), and
last the real MR slice each case's first-model output was registered to.

Measures and prints; research numbers, not for diagnosis.
"""

import argparse
import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

from usmr_tf.metrics import deformation, swd  # noqa: E402
from usmr_tf.metrics.checks import foreground_mask  # noqa: E402

NOTICE = "research numbers, not for diagnosis"


def inside_head(us, value_of):
    """Each US `[H, W]` with its head's interior replaced by `value_of(image)`, -1 outside."""
    return np.stack([np.where(foreground_mask(u), value_of(u), -1.0) for u in us]).astype(
        "float32")


def made_up_sets(us, blur):
    return {
        "identity": us,
        "blurred US": inside_head(us, lambda u: ndimage.gaussian_filter(u, blur)),
        "half-contrast US": inside_head(us, lambda u: 0.5 * u),
        "inverted US": inside_head(us, lambda u: -u),
        "blank head": inside_head(us, lambda u: np.zeros_like(u)),
    }


def score(images, real_mr):
    """Deformation as published and rank-equalised (`RegistrationConfig(equalise=True)`), SWD;
    per image: the published scores and the matched real MR's index."""
    row = {"swd": swd.swd(images[..., None], real_mr[..., None], seed=0)["mean"]}
    for key, equalise in (("deformation", False), ("deformation_equalised", True)):
        config = deformation.RegistrationConfig(equalise=equalise)
        result = deformation.deformation_scores(images, real_mr, top_k=3, config=config)
        row[key], row[f"{key}_sd"] = result["mean"], result["std"]
        if not equalise:
            row["per_image"] = result["scores"].tolist()
            row["matched"] = result["matched"].tolist()
    return row


def figure(sets, rows, real_mr, path, n=6):
    """Six cases (columns) of each set (rows) with their published scores; last row: the real
    MR the first model's output (or the US) was registered to."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [k for k in sets if k != "real MR"]
    first = next((k for k in names if k.startswith("model ")), "identity")
    picks = np.linspace(0, len(sets["identity"]) - 1, n).astype(int)
    fig, axes = plt.subplots(len(names) + 1, n, figsize=(1.6 * n, 1.7 * (len(names) + 1)))
    for r, name in enumerate(names + ["matched real MR"]):
        for c, i in enumerate(picks):
            ax = axes[r, c]
            if name == "matched real MR":
                ax.imshow(real_mr[rows[first]["matched"][i]], cmap="gray", vmin=-1, vmax=1)
            else:
                ax.imshow(sets[name][i], cmap="gray", vmin=-1, vmax=1)
                ax.set_title(f"{rows[name]['per_image'][i]:.2f}", fontsize=7, pad=2)
            ax.set_axis_off()
        label = name if name != "matched real MR" else f"real MR matched\nto {first}"
        axes[r, 0].text(-0.08, 0.5, label.replace("model ", ""), transform=axes[r, 0].transAxes,
                        ha="right", va="center", fontsize=7)
    fig.suptitle("deformation score per image (lower = less warp to the matched real MR) - "
                 f"{NOTICE}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, type=pathlib.Path,
                        help="a `usmr prepare` folder (us/test.npy, mr/test.npy, mr/train.npy)")
    parser.add_argument("--model", action="append", default=[], type=pathlib.Path,
                        help="a synthesis export to score beside the made-up sets (repeatable)")
    parser.add_argument("--blur", type=float, default=3.0, help="blur sigma in px (default 3)")
    parser.add_argument("--json", type=pathlib.Path, help="write the rows here too")
    parser.add_argument("--figure", type=pathlib.Path, help="draw six cases of each set here")
    args = parser.parse_args(argv)
    us = np.load(args.data / "us" / "test.npy")[..., 0]
    real_mr = np.load(args.data / "mr" / "test.npy")[..., 0]
    sets = made_up_sets(us, args.blur)
    for model in args.model:
        from usmr_tf.export.synthesis import synthesize_slices

        sets[f"model {model.name}"] = synthesize_slices(model, us[..., None])[..., 0]
    rows = {name: score(images, real_mr) for name, images in sets.items()}
    # as `usmr evaluate`'s real-MR row: the other split's first slices, as many as the US
    rows["real MR"] = score(np.load(args.data / "mr" / "train.npy")[: len(us), ..., 0], real_mr)
    print(f"{len(us)} test US of {args.data}; deformation and SWD against its "
          f"{len(real_mr)} test-split MR ({NOTICE})")
    print(f"{'row':<22} {'deformation':>17} {'rank-equalised':>17} {'SWD':>8}")
    for name, row in rows.items():
        print(f"{name:<22} {row['deformation']:>9.3f} ± {row['deformation_sd']:.3f} "
              f"{row['deformation_equalised']:>9.3f} ± {row['deformation_equalised_sd']:.3f} "
              f"{row['swd']:>8.1f}")
    if args.figure:
        figure(sets, rows, real_mr, args.figure)
        print(f"wrote {args.figure}")
    if args.json:
        args.json.write_text(json.dumps({"data": str(args.data), "notice": NOTICE,
                                         "blur_sigma_px": args.blur, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
