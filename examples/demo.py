"""`make demo`: the main job of usmr-tf, on the bundled sample set or the full public data.

1. Prepares unpaired US (HC18, spatially normalised with its ellipse annotation) and MR
   (CC0 / Apache-2.0 fetal MR volumes, axial slices of the trans-thalamic band) into a slice
   cache. Two kinds of ``--data`` folder:
   * the bundled sample set ``examples/sample_data`` (the default; it runs on a bare clone):
     it carries its own recipe ``usmr_sample.yaml`` and none of it was used to train the
     preset, so every slice is used;
   * a folder laid out like ``../shared/data`` (``make demo SHARED=../shared/data``):
     prepared with the shipped model's own recipe and split, and only the "test" split
     plus, where the recipe holds a source out (MR: the MIAL fetus), the "heldout" split
     (never seen in training) are used.
2. Synthesizes MR from held-out HC18 images with the shipped preset ``fetal_hc18_v2``
   (``usmr_tf.from_preset``) and writes one PNG per image plus a figure:
   raw US | pre-processed US | synthesized MR | a real MR of a similar plane (not in
   correspondence).
3. Writes a data preview (real US, real MR, paired phantoms).
4. The raw path (what a user has): the HC18 images read without their annotations, the
   fetal head located by the shipped locator ``fetal_head_locator``, aligned, synthesized and
   mapped back into the image (``usmr synthesize --align auto``): ``raw_scan.png`` shows the
   located ellipse on the US (the hand-drawn HC18 ellipse dashed, for comparison) and the MR
   in the image's frame; ``<stem>_raw_mr.png`` per image.

Quiet: TensorFlow's start-up lines are hidden unless ``--verbose`` (or USMR_VERBOSE=1).
Everything written is a research image, not a diagnosis.
"""

import argparse
import pathlib
import sys
import time

from usmr_tf.cli import quiet

quiet.install(verbose="--verbose" in sys.argv[1:] or None)  # before TensorFlow is imported

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from usmr_tf.data import generate_phantoms, load_prepared, prepare_dataset  # noqa: E402
from usmr_tf.errors import UsmrError  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
# The data recipe of the preset being shipped (preset data v2, docs/data.md; the preset
# re-trained on it is fetal_hc18_v2). If the preset is re-trained on another recipe, change
# it here AND in tests/newcomer/test_sample_data.py, and re-check that the sample set
# (examples/sample_data/SOURCES.md) is still held out from that recipe's training split.
DATA_CONFIG = REPO / "recipes" / "data" / "preset_v2.yaml"
SAMPLE_DATA = REPO / "examples" / "sample_data"
SAMPLE_RECIPE = "usmr_sample.yaml"  # a --data folder holding this is a sample set
PRESET = "fetal_hc18_v2"
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


def synthesis_figure(raw, us, mr, real, path):
    """Fig. 3-style rows: raw US | pre-processed US | synthesized MR | real MR (not paired)."""
    cols = ("raw US (HC18, held out)", "pre-processed US", f"synthesized MR ({PRESET})",
            "real MR, similar plane\n(NOT in correspondence)")
    fig, axes = plt.subplots(len(us), 4, figsize=(8.4, 2.1 * len(us)), dpi=90)
    for r in range(len(us)):
        axes[r, 0].imshow(raw[r], cmap="gray")
        axes[r, 0].set_axis_off()
        if r == 0:
            axes[r, 0].set_title(cols[0], fontsize=8)
        for c, image in enumerate((us[r], mr[r], real[r]), start=1):
            _show(axes[r, c], image, cols[c] if r == 0 else None)
    fig.suptitle(f"usmr-tf demo - {NOTICE}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def synthesize_demo(us, us_meta, mr, out, n=4):
    """Runs the preset on `n` held-out US slices (all when there are at most 6); returns the
    figure path."""
    from usmr_tf.data import load_image
    from usmr_tf.export.synthesis import save_png
    from usmr_tf.presets import from_preset

    model = from_preset(PRESET)
    n = len(us) if len(us) <= 6 else n
    picks = np.linspace(0, len(us) - 1, n).astype(int)
    synth = model(us[picks])
    for i, image in zip(picks, synth):
        name = pathlib.Path(us_meta[i]["source"]).stem
        grey = np.round((np.clip(image[..., 0], -1, 1) + 1) * 127.5).astype(np.uint8)
        save_png(grey, out / f"{name}_synth_mr.png")
    raw = [load_image(us_meta[i]["source"]) for i in picks]
    real = mr[np.linspace(0, len(mr) - 1, n).astype(int)]
    figure = out / "synthesis.png"
    synthesis_figure(raw, us[picks], synth, real, figure)
    return figure


def load_held_out(data, out):
    """(us, us_meta, mr, cache, reused, what): slices never seen by the preset's training."""
    data = pathlib.Path(data)
    if not data.is_dir():
        raise UsmrError(f"{data}: data folder not found (pass --data DIR: the bundled "
                        f"{SAMPLE_DATA.relative_to(REPO)} or a folder laid out like "
                        "../shared/data)")
    sample = (data / SAMPLE_RECIPE).is_file()
    recipe = data / SAMPLE_RECIPE if sample else DATA_CONFIG
    cache, _, reused = prepare_dataset(recipe, out / "data", data_root=data)
    # The sample set is held out as a whole; a full data folder is split as for training
    # (test, plus the held-out sources' split where the recipe has one).
    parts = {}
    for m in ("us", "mr"):
        splits = ["train", "test"] if sample else ["test"]
        if (pathlib.Path(cache) / m / "heldout.npy").is_file():
            splits.append("heldout")
        parts[m] = [load_prepared(cache, split, modality=m) for split in splits]
    us = np.concatenate([images for images, _ in parts["us"]])
    us_meta = [m for _, meta in parts["us"] for m in meta]
    mr = np.concatenate([images for images, _ in parts["mr"]])
    what = "bundled sample set" if sample else "test split of the preset's recipe"
    if not sample and len(parts["mr"]) > 1:
        what += " + its held-out MR source"
    return us, us_meta, mr, cache, reused, what


LOCATOR = "fetal_head_locator"


def raw_scan_demo(data, out, n=4):
    """Raw HC18 images -> located head -> MR in the image's frame; returns the figure path."""
    from usmr_tf.data.hc18 import annotation_path, load_annotation
    from usmr_tf.data.images import load_image
    from usmr_tf.export import synthesis
    from usmr_tf.metrics.head_measures import outline
    from usmr_tf.models.head_locator.head_locator_presets import load_locator
    from usmr_tf.presets import from_preset

    folder = pathlib.Path(data) / "us" / "hc18" / "training_set"
    paths = sorted(folder.glob("*HC.png"))[:n]
    locator, model = load_locator(LOCATOR), from_preset(PRESET)
    fig, axes = plt.subplots(2, len(paths), figsize=(3.2 * len(paths), 5.2), squeeze=False)
    for col, path in enumerate(paths):
        image = load_image(path)
        location = locator.locate(image)
        ax_us, ax_mr = axes[0, col], axes[1, col]
        ax_us.imshow(image, cmap="gray")
        ax_us.set_title(f"{path.name}\nscore {location.score:.3f}", fontsize=8)
        ax_us.axis("off")
        ax_mr.axis("off")
        annotation = annotation_path(path)
        if annotation.is_file():
            e = load_annotation(annotation)
            annotated = (e.center[1], e.center[0], e.a, e.b, e.angle)
            ax_us.plot(*outline(annotated, 200, closed=True).T, "c--", lw=1)
        if not location.found:
            ax_mr.set_title(f"refused: {location.refusal}", fontsize=7)
            continue
        ax_us.plot(*outline(location.ellipse, 200, closed=True).T, "y-", lw=1.2)
        us, transform = synthesis.located_image_slice(path, location, model.image_size)
        mr = synthesis.mask_aligned_mr(synthesis.predict_batched(model, us[None])[0], transform)
        grey = synthesis.to_uint8(synthesis.unalign_mr(mr, transform))
        synthesis.save_png(grey, out / f"{path.stem}_raw_mr.png")
        ax_mr.imshow(grey, cmap="gray", vmin=0, vmax=255)
        ax_mr.set_title("synthesized MR (input frame)", fontsize=8)
    fig.suptitle("Raw scan in, MR out: located ellipse (yellow; HC18 annotation dashed) - "
                 f"{NOTICE}", fontsize=9)
    fig.tight_layout()
    figure = out / "raw_scan.png"
    fig.savefig(figure, dpi=90)
    plt.close(fig)
    return figure


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(SAMPLE_DATA),
                        help="data folder: the bundled sample set (default: "
                        "examples/sample_data) or one laid out like ../shared/data")
    parser.add_argument("--out", default="demo_output", help="output folder")
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's start-up lines (also USMR_VERBOSE=1)")
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out)
    start = time.perf_counter()
    try:
        out.mkdir(parents=True, exist_ok=True)
        us, us_meta, mr, cache, reused, what = load_held_out(args.data, out)
        print(f"data {args.data} ({what}); slice cache {cache} "
              f"({'reused' if reused else 'prepared'}): "
              f"{len(us)} held-out US and {len(mr)} held-out MR slices")
        phantoms = generate_phantoms(8, size=us.shape[1], seed=0)
        preview = out / "data_preview.png"
        data_preview(us, mr, phantoms, preview)
        print(f"wrote {preview}")
        from usmr_tf.presets import list_presets, presets_dir

        if PRESET in list_presets():
            figure = synthesize_demo(us, us_meta, mr, out)
            print(f"wrote {figure} and {out}/*_synth_mr.png (preset {PRESET})")
            if LOCATOR in list_presets():
                figure = raw_scan_demo(args.data, out)
                print(f"wrote {figure} and {out}/*_raw_mr.png (raw scans, head located by "
                      f"{LOCATOR})")
        else:
            print(f"preset {PRESET} is not in {presets_dir()}: showing the data only")
    except (UsmrError, OSError) as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 2
    print(f"demo done in {time.perf_counter() - start:.1f} s; outputs in {out}/ ({NOTICE})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
