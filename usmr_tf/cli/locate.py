"""`usmr locate`: find the fetal head ellipse in raw US images, as an HC18 result CSV.

    usmr locate IMG.png [IMG2.png | FOLDER ...] --csv OUT.csv [--pixel-size MM | --pixel-size-csv CSV]

One row per image in the HC18 challenge's result format
``filename,center_x_mm,center_y_mm,semi_axes_a_mm,semi_axes_b_mm,angle_rad`` (centre from the
image's top-left corner, x to the right, y down; ``a`` the semi-major axis, ``angle_rad`` its
direction from +x towards +y), plus ``hc_mm`` (ellipse perimeter), ``score`` (the locator's
confidence, 0-1) and ``note``. Without a pixel size the same columns are in pixels (``_px``).
``--pixel-size-csv`` reads HC18's ``*_pixel_size*.csv`` (``filename,pixel size(mm),...``).

An image with no fetal head the locator can trust (score under the export's threshold, a head
too small to align, or too little of it in the frame) gets a row with empty values and the
reason in ``note``, one line on stderr naming it, and the exit code is 1; bad input (not an
image, unreadable) is an error before anything is written (exit 2). HC here is a research
measurement, not a clinical one.
"""

import csv
import io
import pathlib

from usmr_tf.errors import ConfigError, DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
HC18_FIELDS = ("center_x", "center_y", "semi_axes_a", "semi_axes_b")
NOTICE = "research measurement, not for clinical use"


def register(subparsers):
    parser = subparsers.add_parser(
        "locate", help="find the fetal head ellipse in raw US images (HC18 CSV)",
        description=__doc__.split("\n\n")[0] + " Research measurements, not for clinical use.")
    parser.add_argument("inputs", nargs="+", help="US images (.png/.jpg) or folders of them")
    parser.add_argument("--csv", required=True, help="output CSV (HC18 result format)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--pixel-size", type=float, default=None, metavar="MM",
                      help="pixel size in mm for every image (columns in mm)")
    size.add_argument("--pixel-size-csv", default=None, metavar="CSV",
                      help="HC18 *_pixel_size*.csv: per-image pixel size in mm (columns in mm)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", help="locator export: saved_models/NAME or NAME/VERSION")
    source.add_argument("--preset", help="a locator preset (default fetal_head_locator)")
    parser.add_argument("--version", type=int, default=None, help="model version (default latest)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing CSV")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def _is_annotation(path):
    return path.name.split(".")[0].endswith("_Annotation")


def collect_images(inputs):
    """Image files of the arguments (folders: their images, not ``*_Annotation.png``)."""
    files = []
    for item in inputs:
        path = pathlib.Path(item)
        if not path.exists():
            raise DataError("no such file or folder", path)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file()
                           and p.suffix.lower() in IMAGE_SUFFIXES and not _is_annotation(p))
            if not found:
                raise DataError("folder has no .png/.jpg/.jpeg image", path)
            files.extend(found)
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            files.append(path)
        else:
            raise DataError("unsupported input: expected a .png, .jpg, .jpeg image or a folder",
                            path)
    return files


def read_pixel_sizes(path):
    """``{filename: mm}`` from an HC18 pixel-size CSV (``filename,pixel size(mm),...``)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError("no such pixel-size CSV", path)
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header or len(header) < 2 or "pixel" not in header[1].lower():
            raise DataError("not an HC18 pixel-size CSV (expected a header "
                            "'filename,pixel size(mm),...')", path)
        sizes = {}
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                sizes[row[0].strip()] = float(row[1])
            except (IndexError, ValueError):
                raise DataError(f"line {line}: expected filename,pixel size(mm)", path) from None
    return sizes


def pixel_sizes_for(files, pixel_size=None, pixel_size_csv=None):
    """Per-file pixel size in mm (None: pixels); a file missing from the CSV is an error."""
    if pixel_size is not None:
        if not pixel_size > 0:
            raise ConfigError(f"--pixel-size must be > 0, got {pixel_size}")
        return [pixel_size] * len(files)
    if pixel_size_csv is None:
        return [None] * len(files)
    table = read_pixel_sizes(pixel_size_csv)
    missing = [f for f in files if f.name not in table]
    if missing:
        raise DataError(f"no pixel size for {missing[0].name} in {pixel_size_csv}"
                        + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
                        missing[0])
    return [table[f.name] for f in files]


def header(in_mm):
    unit = "mm" if in_mm else "px"
    return (["filename"] + [f"{f}_{unit}" for f in HC18_FIELDS]
            + ["angle_rad", f"hc_{unit}", "score", "note"])


def row(name, location, pixel_size):
    """One CSV row of a ``Location`` (``pixel_size`` mm, or None for pixels)."""
    if not location.found:
        return [name, "", "", "", "", "", "", f"{location.score:.4f}", location.refusal]
    k = pixel_size or 1.0
    values = [location.cx * k, location.cy * k, location.a * k, location.b * k]
    return ([name] + [f"{v:.4f}" for v in values] + [f"{location.angle:.6f}",
            f"{location.hc * k:.4f}", f"{location.score:.4f}", NOTICE])


def csv_text(rows, in_mm):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header(in_mm))
    writer.writerows(rows)
    return buffer.getvalue()


def read_images(files):
    """Every image read (DataError naming a bad file) before any model is loaded."""
    from usmr_tf.data.images import load_image

    return [load_image(p) for p in files]


def locate_files(locator, files, images, quiet=False):
    """``[(path, Location)]`` of already read ``images``, with a progress bar."""
    from usmr_tf.cli.common import progress

    results = []
    with progress(len(files), "locate", unit="image", quiet=quiet) as bar:
        for path, image in zip(files, images):
            results.append((path, locator.locate(image)))
            bar.update(1)
    return results


def run(args):
    from usmr_tf.atomic import write_text_atomic
    from usmr_tf.models.head_locator.head_locator_presets import load_locator

    out = pathlib.Path(args.csv)
    if out.exists() and not args.overwrite:
        raise DataError("output already exists (pass --overwrite to replace it)", out)
    if out.is_dir():
        raise DataError("--csv must name a file, not a folder", out)
    files = collect_images(args.inputs)
    sizes = pixel_sizes_for(files, args.pixel_size, args.pixel_size_csv)
    images = read_images(files)
    locator = load_locator(args.preset, args.model, args.version)
    results = locate_files(locator, files, images, args.quiet)
    in_mm = sizes[0] is not None
    rows = [row(path.name, loc, size) for (path, loc), size in zip(results, sizes)]
    write_text_atomic(out, csv_text(rows, in_mm))
    refused = [(path, loc) for path, loc in results if not loc.found]
    import sys

    for path, loc in refused:
        print(f"usmr locate: refused {path}: {loc.refusal}", file=sys.stderr)
    print(f"wrote {out} ({len(results) - len(refused)} located, {len(refused)} refused; "
          f"locator {locator.model_dir.name} v{locator.version}) - HC is a {NOTICE}")
    return 1 if refused else 0
