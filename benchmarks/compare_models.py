"""Side-by-side figure: the same test US through several exported models, and real MR below.

    .venv/bin/python benchmarks/compare_models.py --data ../runs/preset_v3_data \
        --model "version 2 (shipped)=saved_models/fetal_hc18_v2/2" \
        --model "v3 candidate=../runs/exports/v3best" \
        --out docs/figures/preset_v3_candidate_vs_v2.png

`--data` is a `usmr prepare` folder: `--n` US images evenly spaced through its `us/test.npy`
and as many real MR slices of `mr/test.npy` (other fetuses: not in correspondence with the
US). Research images, not for diagnosis.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _images(data, modality, n):
    """`n` test-split images of a prepared dataset, evenly spaced through it."""
    from usmr_tf.data import cache

    images = cache.load_prepared(data, "test", modality=modality)[0]
    return images[np.linspace(0, len(images) - 1, n).astype(int)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a `usmr prepare` folder")
    parser.add_argument("--model", action="append", required=True, metavar="LABEL=PATH",
                        help="an exported model (saved_models/NAME[/VERSION]); repeatable")
    parser.add_argument("--n", type=int, default=8, help="images a row")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    from usmr_tf.export.runtimes import SavedModelRunner

    us = _images(args.data, "us", args.n)
    rows = {"US (test split)": us}
    for item in args.model:
        label, sep, path = item.partition("=")
        if not sep:
            parser.error(f"--model {item!r}: expected LABEL=PATH")
        rows[label] = SavedModelRunner(path)(us)
    rows["real MR of the test split (other fetuses, not in correspondence)"] = _images(
        args.data, "mr", args.n)
    fig, ax = plt.subplots(len(rows), args.n, figsize=(1.6 * args.n, 1.85 * len(rows)),
                           squeeze=False)
    plt.subplots_adjust(left=0.01, right=0.99, top=0.93, bottom=0.01, wspace=0.03, hspace=0.22)
    for i, (label, images) in enumerate(rows.items()):
        for j in range(args.n):
            ax[i, j].imshow(images[j, ..., 0], cmap="gray", vmin=-1, vmax=1)
            ax[i, j].axis("off")
        fig.text(0.01, ax[i, 0].get_position().y1 + 0.005, label, fontsize=9)
    fig.suptitle("Research images, not for diagnosis.", fontsize=9)
    fig.savefig(args.out, dpi=72)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
