"""Does each synthesized MR keep its US's head? The outline check of exports (issue 18).

    .venv/bin/python benchmarks/head_outline.py --data ../runs/preset_v3_data128 \\
        --model saved_models/fetal_hc18_v2 [--model EXPORT ...] [--json F] [--figure F.png]

Prints `usmr_tf.metrics.outline` for each export on a prepared folder's test US, beside the US
passed through: the mean and lowest Dice of the synthesized head with the US's intracranial
region, and the shares of that region's area drawn outside it (spill) and left empty
(missing). `--figure`: eight test US and each model's MR with the region outlined in red.

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
from usmr_tf.metrics.outline import DEFAULT_SCALE, outline_measures, shrink, us_head  # noqa: E402

NOTICE = "research numbers, not for diagnosis"


def measure(us, synth):
    m = outline_measures(us, synth)
    return {"outline": float(np.nanmean(m["dice"])), "outline_min": float(np.nanmin(m["dice"])),
            "spill": float(np.nanmean(m["spill"])), "missing": float(np.nanmean(m["missing"])),
            "n": int(np.isfinite(m["dice"]).sum())}


def figure(us, outputs, path, n=8):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picks = np.linspace(0, len(us) - 1, n).astype(int)
    rows = {"US": us, **outputs}
    fig, axes = plt.subplots(len(rows), n, figsize=(1.8 * n, 1.9 * len(rows)), squeeze=False)
    for col, i in enumerate(picks):
        region = shrink(us_head(us[i, ..., 0]), DEFAULT_SCALE)
        for row, (name, images) in enumerate(rows.items()):
            ax = axes[row, col]
            ax.imshow(images[i, ..., 0], cmap="gray", vmin=-1, vmax=1)
            ax.contour(region, levels=[0.5], colors="r", linewidths=0.6)
            ax.set_axis_off()
            if col == 0:
                ax.set_title(name, fontsize=7, loc="left")
    fig.suptitle(f"the US's intracranial region (red) on the US and each model's MR - {NOTICE}",
                 fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=60)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a `usmr prepare` folder (us/test.npy)")
    parser.add_argument("--model", action="append", required=True, help="an export (repeat)")
    parser.add_argument("--json", help="also write the numbers as JSON")
    parser.add_argument("--figure", help="also draw eight test US and the models' MR (PNG)")
    args = parser.parse_args(argv)
    path = pathlib.Path(args.data) / "us" / "test.npy"
    if not path.is_file():
        parser.error(f"{args.data}: no us/test.npy (not a `usmr prepare` folder)")
    us = np.load(path)
    rows = {"identity (US passed through)": measure(us, us)}
    outputs = {}
    for model in args.model:
        name = pathlib.Path(model).name
        outputs[name] = synthesize_slices(model, us)
        rows[name] = measure(us, outputs[name])
    print(f"{len(us)} test US of {args.data}; {NOTICE}")
    print(f"{'':32s} outline  (min)   spill  missing")
    for name, r in rows.items():
        print(f"{name:32s} {r['outline']:.3f}  ({r['outline_min']:.3f})  {r['spill']:.3f}  "
              f"{r['missing']:.3f}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(
            {"data": args.data, "n_us": int(len(us)), "rows": rows, "notice": NOTICE},
            indent=1) + "\n")
    if args.figure:
        figure(us, outputs, args.figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
