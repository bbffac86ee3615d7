"""How much of the US's own brightness a synthesis model carries into its MR (issue 18, item 3).

Prints `usmr_tf.metrics.carryover` (correlation of US and MR inside the head, the share of
bright MR there, and where those bright pixels sit in the US's brightness ranking) for each
export on a prepared split, beside the US passed through and the real MR's bright share.

    .venv/bin/python benchmarks/intensity_carryover.py --data ../runs/preset_v3_data \\
        --model saved_models/fetal_hc18_v2 [--model EXPORT ...] [--json F] [--figure F.png]

`--figure`: eight of the US with the first model's bright MR pixels outlined on them, and the MR.

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

from usmr_tf.export.synthesis import synthesize_slices  # noqa: E402
from usmr_tf.metrics.carryover import bright_share, carryover  # noqa: E402

NOTICE = "research numbers, not for diagnosis"


def figure(us, synth, path, erode, bright, title, n=8):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from usmr_tf.metrics.carryover import interior

    picks = np.linspace(0, len(us) - 1, n).astype(int)
    fig, axes = plt.subplots(2, n, figsize=(1.9 * n, 4.2))
    for col, i in enumerate(picks):
        bright_mr = (synth[i, ..., 0] > bright) & interior(us[i, ..., 0], erode)
        for row, image in enumerate((us[i], synth[i])):
            ax = axes[row, col]
            ax.imshow(image[..., 0], cmap="gray", vmin=-1, vmax=1)
            ax.contour(bright_mr, levels=[0.5], colors="r", linewidths=0.6)
            ax.set_axis_off()
        axes[0, col].set_title(f"test {i}", fontsize=7)
    axes[0, 0].text(-0.1, 0.5, "US", transform=axes[0, 0].transAxes, ha="right", fontsize=8)
    axes[1, 0].text(-0.1, 0.5, "MR", transform=axes[1, 0].transAxes, ha="right", fontsize=8)
    fig.suptitle(f"{title}: MR brighter than {bright} inside the head (red) - {NOTICE}",
                 fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a prepared data folder (usmr prepare)")
    parser.add_argument("--split", default="test", help="US split (default: test)")
    parser.add_argument("--mr-splits", nargs="+", default=["test", "heldout"],
                        help="real MR splits to show (default: test heldout)")
    parser.add_argument("--model", action="append", required=True,
                        help="a synthesis SavedModel folder (repeat for several)")
    parser.add_argument("--erode", type=int, default=10, help="px taken off the head mask")
    parser.add_argument("--bright", type=float, default=0.3, help="'bright' MR threshold")
    parser.add_argument("--json", default=None, help="also write the rows as JSON")
    parser.add_argument("--figure", default=None, help="also draw the first model's bright MR")
    args = parser.parse_args(argv)
    data = pathlib.Path(args.data)
    us = np.load(data / "us" / f"{args.split}.npy")
    rows = {"identity (US passed through)": carryover(us, us, args.erode, args.bright)}
    for k, model in enumerate(args.model):
        synth = synthesize_slices(model, us)
        rows[model] = carryover(us, synth, args.erode, args.bright)
        if k == 0 and args.figure:
            figure(us, synth, args.figure, args.erode, args.bright, pathlib.Path(model).name)
            print(f"wrote {args.figure} - {NOTICE}")
    for split in args.mr_splits:
        path = data / "mr" / f"{split}.npy"
        if path.is_file():
            rows[f"real MR ({split})"] = bright_share(np.load(path), args.erode, args.bright)
    print(f"{len(us)} {args.split} US, interior = head mask eroded {args.erode} px, "
          f"bright > {args.bright} ({NOTICE})")
    print(f"{'':44s} {'corr(US,MR)':>11s} {'bright share':>12s} {'US pct of bright':>16s}")
    for name, r in rows.items():
        fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        print(f"{name[-44:]:44s} {fmt(r.get('corr')):>11s} {fmt(r['bright_share']):>12s} "
              f"{fmt(r.get('bright_us_percentile')):>16s}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(
            {"notice": NOTICE, "split": args.split, "erode": args.erode,
             "bright": args.bright, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
