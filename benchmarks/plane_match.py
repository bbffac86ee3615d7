"""Checks that the MR slices of a preparation recipe match the HC18 US planes.

    python benchmarks/plane_match.py [--data ../shared/data]
        [--recipe recipes/data/preset_hc18_cc0.yaml] [--figure docs/figures/preset_data.png]

Prints the measurements behind the `band` and `fill` settings (docs/data.md, "Data for
the pretrained model"):
1. HC18: the mean radial intensity profile of all images in units of the annotated
   ellipse (rho = 1): where the skull echo peaks and where its inner edge is; the MR
   `fill` that makes brains as large as the intracranial space is head_fraction x edge;
2. spina bifida atlas: relative positions (0 = inferior end of the brain mask) of the
   deep grey matter, cerebellum and brainstem labels along the axial slice axis;
3. the prepared recipe: slices per source and split, the brain's longer side in pixels,
   and the angle of each slice's long axis from the horizontal, for US and MR.
With `--figure`, writes a grid of training US and MR slices. Research images only.
"""

import argparse
import collections
import math
import os
import pathlib
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

from usmr_tf.data import cache, hc18  # noqa: E402
from usmr_tf.data.images import load_image  # noqa: E402
from usmr_tf.data.nifti import load_volume  # noqa: E402
from usmr_tf.data.prepare import load_config, prepare_dataset  # noqa: E402

RHO = np.arange(0.6, 1.12, 0.005)
SB_LABELS = {"deep grey matter": 6, "cerebellum": 3, "brainstem": 7, "corpus callosum": 8}


def hc18_skull(root):
    """Mean radial profiles (all / major / minor sectors) over the HC18 images."""
    sums = collections.defaultdict(list)
    paths = sorted(pathlib.Path(root).glob("*HC.png"))
    for path in paths:
        ellipse = hc18.load_annotation(hc18.annotation_path(path))
        samples, phi = hc18.radial_profile(load_image(path), ellipse, RHO)
        samples /= np.nanpercentile(samples, 99)
        sectors = {"all": np.ones_like(phi, bool),
                   "major": np.abs(np.cos(phi)) > math.cos(math.radians(20)),
                   "minor": np.abs(np.sin(phi)) > math.cos(math.radians(20))}
        for name, keep in sectors.items():
            sums[name].append(np.nanmean(samples[:, keep], axis=1))
    print(f"HC18 skull echo, mean radial profile of {len(paths)} images (rho 1 = annotation):")
    edges = {}
    for name, profiles in sums.items():
        profile = np.nanmean(profiles, axis=0)
        edges[name] = hc18.skull_inner_edge(profile, RHO)
        print(f"  {name:5s}: peak at rho {RHO[np.nanargmax(profile)]:.3f}, "
              f"inner edge at rho {edges[name]:.3f}")
    return edges


def atlas_band(root):
    print("spina bifida atlas, relative axial position (0 = inferior end of the mask):")
    for folder in sorted(pathlib.Path(root).glob("fetal_SB_atlas_GA2[1-5]_notoperated")):
        labels = np.rint(load_volume(folder / "parcellation.nii.gz").data).astype(int)
        z = np.flatnonzero((labels > 0).any(axis=(0, 1)))
        rel = lambda i: (i - z[0]) / (z[-1] - z[0])  # noqa: E731
        parts = []
        for name, label in SB_LABELS.items():
            area = (labels == label).sum(axis=(0, 1))
            half = np.flatnonzero(area >= 0.5 * area.max())
            hit = np.flatnonzero(area)
            parts.append(f"{name} {rel(hit[0]):.2f}-{rel(hit[-1]):.2f} "
                         f"(>= half max {rel(half[0]):.2f}-{rel(half[-1]):.2f})")
        print(f"  {folder.name[15:19]}: " + "; ".join(parts))


def long_axis_angle(image):
    """Degrees in [0, 90] of the principal axis of the foreground's largest connected
    part (without remnants outside the brain) from the horizontal."""
    parts, n = ndimage.label(image > -1)
    largest = np.argmax(ndimage.sum(np.ones_like(image), parts, range(1, n + 1))) + 1
    rows, cols = np.nonzero(parts == largest)
    _, vectors = np.linalg.eigh(np.cov(np.stack([rows, cols]).astype(float)))
    return float(np.degrees(np.arctan2(abs(vectors[0, -1]), abs(vectors[1, -1]))))


def longer_side(image):
    rows, cols = np.nonzero(image > -1)
    return max(rows.max() - rows.min(), cols.max() - cols.min()) + 1


def central_length(image, half=8):
    """Horizontal extent (px) of the foreground in the central rows: the occipito-frontal
    length of a levelled head, unaffected by remnants above or below it."""
    centre = image.shape[0] // 2
    cols = np.flatnonzero((image[centre - half:centre + half] > -1).any(axis=0))
    return cols[-1] - cols[0] + 1


def report_prepared(out, inner):
    print(f"prepared {out}:")
    print(f"  HC18 intracranial length (head_fraction x major inner edge x size): "
          f"{inner:.1f} px")
    for modality in ("us", "mr"):
        per_source = collections.defaultdict(lambda: {
            "train": 0, "test": 0, "angles": [], "lengths": [],
            "sides": collections.defaultdict(int)})
        for split in ("train", "test"):
            images, meta = cache.load_prepared(out, split, modality=modality)
            for image, m in zip(images[..., 0], meta):
                entry = per_source[m["dataset"]]
                entry[split] += 1
                entry["angles"].append(long_axis_angle(image))
                entry["lengths"].append(central_length(image))
                side = entry["sides"]
                side[m["source"]] = max(side[m["source"]], longer_side(image))
        for name, e in per_source.items():
            angles, sides = np.array(e["angles"]), np.array(list(e["sides"].values()))
            print(f"  {modality} {name}: {e['train']} train / {e['test']} test slices; long "
                  f"axis from horizontal: median {np.median(angles):.1f} deg, "
                  f"{np.mean(angles > 45) * 100:.0f}% > 45 deg; longer side per file: "
                  f"median {np.median(sides):.0f} px ({sides.min()}-{sides.max()}); length "
                  f"through the centre rows: median {np.median(e['lengths']):.0f} px")


def write_figure(out, path, inner, columns=8):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = []
    for modality, label in (("us", "US (HC18)"), ("mr", "MR")):
        images, meta = cache.load_prepared(out, "train", modality=modality)
        if modality == "mr":  # every MR source, evenly
            by_source = collections.defaultdict(list)
            for i, m in enumerate(meta):
                by_source[m["dataset"]].append(i)
            picks = []
            for idx in by_source.values():
                picks += [idx[int(j)] for j in np.linspace(0, len(idx) - 1, 2 * columns //
                                                            len(by_source) + 1)]
            picks = picks[: 2 * columns]
        else:
            picks = list(np.linspace(0, len(images) - 1, 2 * columns).astype(int))
        for r in range(2):
            rows.append((label, [(images[i, ..., 0], meta[i]["dataset"])
                                 for i in picks[r * columns:(r + 1) * columns]]))
    fig, axes = plt.subplots(len(rows), columns, figsize=(columns * 1.0, len(rows) * 1.1))
    for r, (label, cells) in enumerate(rows):
        for c, ax in enumerate(axes[r]):
            ax.axis("off")
            if c < len(cells):
                ax.imshow(cells[c][0], cmap="gray", vmin=-1, vmax=1)
                for x in (63.5 - inner / 2, 63.5 + inner / 2):  # HC18 intracranial length
                    ax.axvline(x, color="tab:orange", lw=0.4, ls=(0, (2, 2)))
                if label == "MR":
                    ax.set_title(cells[c][1], fontsize=5, pad=1)
        axes[r, 0].text(-8, 64, label, rotation=90, fontsize=6, ha="right", va="center")
    fig.suptitle("training slices of recipes/data/preset_hc18_cc0.yaml; dashed: HC18 "
                 f"intracranial length ({inner:.0f} px). Research images, not for diagnosis",
                 fontsize=6)
    fig.tight_layout(pad=0.2, h_pad=0.3, w_pad=0.1, rect=(0, 0, 1, 0.96))
    tmp = pathlib.Path(path).with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=88)
    os.replace(tmp, path)
    print(f"wrote {path} ({pathlib.Path(path).stat().st_size // 1024} KB)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--recipe", default=str(REPO / "recipes/data/preset_hc18_cc0.yaml"))
    parser.add_argument("--figure", default=None)
    args = parser.parse_args(argv)
    data = pathlib.Path(args.data)
    edges = hc18_skull(data / "us" / "hc18" / "training_set")
    atlas_band(data / "mr" / "spina_bifida_fidon2021")
    config = load_config(args.recipe)
    head_fraction = config["us"][0].get("head_fraction", 0.8)
    print(f"suggested MR fill = head_fraction x major inner edge = "
          f"{head_fraction} x {edges['major']:.3f} = {head_fraction * edges['major']:.3f}")
    with tempfile.TemporaryDirectory() as tmp:
        out, _, _ = prepare_dataset(config, pathlib.Path(tmp) / "prepared", data_root=data)
        inner = head_fraction * edges["major"] * config.get("size", 128)
        report_prepared(out, inner)
        if args.figure:
            write_figure(out, args.figure, inner)


if __name__ == "__main__":
    main()
