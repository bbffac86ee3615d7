"""Draws the located ellipse (red) and the annotation's (cyan, dashed) on HC18 images.

    python benchmarks/plot_locator_cases.py --out docs/figures/locator_worst_val.png \\
        [--locator saved_models/fetal_head_locator] [--data-root ../shared/data] \\
        hc18/704_2HC.png hc18/544_2HC.png hc18_more/096_HC.png hc18_more/140_HC.png

Images are named ``FOLDER/FILE`` under ``DATA_ROOT/us/FOLDER/training_set`` (HC18's layout).
Research images only, not for diagnosis.
"""

import argparse
import pathlib
import sys


ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from usmr_tf.data.hc18 import load_annotation  # noqa: E402
from usmr_tf.data.images import load_image  # noqa: E402
from usmr_tf.metrics.head_measures import outline  # noqa: E402
from usmr_tf.models.head_locator.head_locator_presets import LocatorRunner  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="+", help="FOLDER/FILE, e.g. hc18/704_2HC.png")
    parser.add_argument("--out", required=True)
    parser.add_argument("--locator", default=str(ROOT / "saved_models/fetal_head_locator"))
    parser.add_argument("--data-root", default=str(ROOT.parent / "shared/data"))
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runner = LocatorRunner(args.locator)
    fig, axes = plt.subplots(1, len(args.images), figsize=(4.5 * len(args.images), 3.6),
                             squeeze=False)
    for ax, name in zip(axes[0], args.images):
        folder, file = name.split("/", 1)
        path = pathlib.Path(args.data_root) / "us" / folder / "training_set" / file
        image = load_image(path)
        ann = load_annotation(path.with_name(path.stem + "_Annotation.png"))
        loc = runner.locate(image)
        ax.imshow(image, cmap="gray")
        located = (loc.cx, loc.cy, loc.a, loc.b, loc.angle)
        annotated = (ann.center[1], ann.center[0], ann.a, ann.b, ann.angle)
        ax.plot(*outline(located, 360, closed=True).T, "r-", lw=0.8, label="located")
        ax.plot(*outline(annotated, 360, closed=True).T, "c--", lw=0.8, label="annotation")
        ax.set_title(f"{name} (score {loc.score:.2f})", fontsize=9)
        ax.axis("off")
    axes[0][0].legend(fontsize=8, loc="lower left")
    fig.suptitle(f"{runner.model_dir.name} v{runner.version}: located (red) vs HC18 annotation "
                 "(cyan) - research images, not for diagnosis", fontsize=10)
    fig.savefig(args.out, dpi=80, bbox_inches="tight")
    print(f"wrote {args.out} - research images, not for diagnosis")


if __name__ == "__main__":
    main()
