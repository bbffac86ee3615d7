"""`usmr synthesize`: US -> MR with an exported model, for a NIfTI volume, a PNG/JPEG or a folder.

    usmr synthesize --preset fetal_hc18_v2 us.png mr.png            # raw scan: located, aligned
    usmr synthesize --preset fetal_hc18_v2 us_dir/ mr_dir/ [--csv heads.csv]
    usmr synthesize --preset fetal_hc18_v2 --align hc18 010_HC.png mr.png [--output-frame aligned]
    usmr synthesize --preset fetal_hc18_v2 --align none aligned_us.png mr.png
    usmr synthesize --model saved_models/NAME in.nii.gz out.nii.gz [--preview fig.png]

Images are aligned as the preset was trained (head centred, its major axis horizontal, scaled
to a canonical size, masked to the head): ``--align auto`` (default) finds the skull ellipse
with the head locator (``usmr locate``); ``--align hc18`` reads it from the image's HC18
``<stem>_Annotation.png`` (``--align-hc18`` is the same); ``--align none`` takes images that
are already aligned. The MR comes back in the input's frame, masked to the head
(``--output-frame aligned``: the model's ``image_size`` square). An image where the locator
finds no fetal head is refused: no output for it, one line naming it, exit code 1 (in a
folder the others are still written). ``--csv`` writes the ellipses (``usmr locate``'s
columns, in pixels). Volumes are synthesized slice by slice along the model's slice axis
(``usmr.json``) with a progress bar and keep the input's affine and voxel grid (3D
alignment of US volumes is not done: align them before). An existing output is kept unless
``--overwrite``; a failure leaves no partial output. Outputs are research images, not for
diagnosis.
"""

import errno
import os
import pathlib
import shutil
import sys
import tempfile

from usmr_tf.errors import ConfigError, DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
ALIGN_MODES = ("auto", "hc18", "none")


def register(subparsers):
    parser = subparsers.add_parser(
        "synthesize",
        help="synthesize MR from US (NIfTI, PNG or a folder)",
        description=__doc__.split("\n\n")[0] + " Research output, not for diagnosis.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model",
                        help="exported model: saved_models/NAME or saved_models/NAME/VERSION")
    source.add_argument("--preset", help="a pretrained model by name (see `usmr presets`)")
    parser.add_argument("--version", type=int, default=None, help="model version (default latest)")
    parser.add_argument("input", help="US volume (.nii/.nii.gz), image (.png/.jpg) or folder")
    parser.add_argument("output", help="output file (same kind as the input) or folder")
    parser.add_argument("--axis", type=int, choices=(0, 1, 2), default=None,
                        help="RAS slice axis for volumes (default: the model's, from usmr.json)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--preview", default=None,
                        help="write a side-by-side figure (input US | synthesized MR) here")
    parser.add_argument("--align", choices=ALIGN_MODES, default="auto",
                        help="images: auto = locate the head with the locator (default); hc18 = "
                             "use each image's <stem>_Annotation.png ellipse; none = input "
                             "already aligned. Folders skip *_Annotation.png files")
    parser.add_argument("--align-hc18", dest="align", action="store_const", const="hc18",
                        help="same as --align hc18")
    parser.add_argument("--output-frame", choices=("original", "aligned"), default="original",
                        help="images: the MR in the input image's frame (default) or the "
                             "model's image_size x image_size frame")
    parser.add_argument("--csv", default=None,
                        help="write the located (or annotated) head ellipses here (pixels)")
    locator = parser.add_mutually_exclusive_group()
    locator.add_argument("--locator", default=None,
                         help="locator preset for --align auto (default fetal_head_locator)")
    locator.add_argument("--locator-model", default=None,
                         help="locator export for --align auto: saved_models/NAME[/VERSION]")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def _kind(path):
    name = str(path).lower()
    if pathlib.Path(path).is_dir():
        return "folder"
    if name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if name.endswith(IMAGE_SUFFIXES):
        return "image"
    return None


def _output_name(path):
    """Output file name inside an output folder: NIfTI keeps its name, images become .png."""
    if _kind(path) == "nifti":
        return path.name
    return path.stem + ".png"


def _is_annotation(path):
    return pathlib.Path(path).name.split(".")[0].endswith("_Annotation")


def _check_aligned_inputs(files):
    """--align-hc18: images only, each with its annotation (checked before any output)."""
    from usmr_tf.export.synthesis import require_annotation

    for path in files:
        if _kind(path) != "image":
            raise DataError("--align-hc18 applies to HC18 PNG/JPEG images, not NIfTI volumes",
                            path)
        require_annotation(path)


def _check_writable(out):
    """Fails now, before the model is loaded, if `out` cannot be created (a file where its
    folder should be, a read-only folder): no output is written when one of them cannot be."""
    from usmr_tf.atomic import atomic_path, cannot_write

    parent = out.parent
    missing = []
    while not parent.exists() and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    if not missing:
        try:
            with atomic_path(out):  # a temp file beside `out`, removed; `out` is not touched
                raise _Probed()
        except _Probed:
            pass
        return
    # Folders to be made: probe their nearest existing ancestor and make none now. (Making
    # them and removing them again raced with another run that had just made the same ones:
    # its output folder vanished under it.)
    if not parent.is_dir():
        raise cannot_write(out, NotADirectoryError(errno.ENOTDIR, "Not a directory",
                                                   str(missing[-1])))
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{out.name}.")
    except OSError as exc:
        raise cannot_write(out, exc) from None
    os.close(fd)
    os.unlink(tmp)


class _Probed(Exception):
    pass


def _plan(args):
    """[(input, output)] plus the staging info, after checking kinds and existing outputs."""
    src, dst = pathlib.Path(args.input), pathlib.Path(args.output)
    if not src.exists():
        raise DataError("no such file or folder", src)
    kind = _kind(src)
    if kind is None:
        raise DataError("unsupported input: expected .nii, .nii.gz, .png, .jpg, .jpeg or a folder",
                        src)
    for out in (dst, pathlib.Path(args.preview) if args.preview else None):
        if out is not None and out.exists() and not args.overwrite:
            raise DataError("output already exists (pass --overwrite to replace it)", out)
        if out is not None:
            _check_writable(out)
    if kind == "folder":
        files = sorted(p for p in src.iterdir() if p.is_file() and _kind(p) in ("nifti", "image")
                       and not (args.align != "none" and _is_annotation(p)))
        if not files:
            raise DataError("folder has no .nii/.nii.gz/.png/.jpg/.jpeg file", src)
        names = [_output_name(p) for p in files]
        if len(set(names)) != len(names):
            raise DataError("two inputs would give the same output name (e.g. a.png and a.jpg)",
                            src)
        if dst.exists() and not dst.is_dir():
            raise DataError("output for a folder input must be a folder", dst)
        if args.align == "hc18":
            _check_aligned_inputs(files)
        return kind, files
    expected = NIFTI_SUFFIXES if kind == "nifti" else (".png",)
    if not str(dst).lower().endswith(expected) or dst.is_dir():
        raise DataError(f"output for a {kind} input must be a file ending with "
                        f"{' or '.join(expected)}", dst)
    if args.align == "hc18":
        _check_aligned_inputs([src])
    return kind, [src]


def _progress(total, quiet):
    from tqdm import tqdm

    return tqdm(total=total, unit="slice", desc="synthesize", disable=True if quiet else None)


class Refused(Exception):
    """The locator found no fetal head it can trust in this image (``Location.refusal``)."""


def _synthesize_file(runner, path, out_path, axis, args, preview, located):
    """One input -> one output; returns (US, MR) for the preview or None. ``located`` maps
    image paths to their ``Location`` (``--align auto``)."""
    from usmr_tf.export import synthesis

    if _kind(path) == "nifti":
        volume, us, geometry = synthesis.volume_slices(path, axis, runner.image_size)
        with _progress(len(us), args.quiet) as bar:
            mr = synthesis.predict_batched(runner, us, args.batch_size, bar)
        synthesis.save_nifti_like(synthesis.mr_to_volume(mr, geometry), volume, out_path)
        middle = len(us) // 2
        return (us[middle], mr[middle]) if preview else None
    if args.align == "none":
        us, fit = synthesis.image_slice(path, runner.image_size)
        mr = synthesis.predict_batched(runner, us[None], args.batch_size)[0]
        image = synthesis.mr_to_image(mr, fit) if args.output_frame == "original" \
            else synthesis.to_uint8(mr[..., 0])
        synthesis.save_png(image, out_path)
        return (us, mr) if preview else None
    if args.align == "hc18":
        us, transform = synthesis.aligned_image_slice(path, runner.image_size)
    else:
        location = located[path]
        if not location.found:
            raise Refused(location.refusal)
        us, transform = synthesis.located_image_slice(path, location, runner.image_size)
    mr = synthesis.predict_batched(runner, us[None], args.batch_size)[0]
    mr = synthesis.mask_aligned_mr(mr, transform)
    image = synthesis.unalign_mr(mr, transform) if args.output_frame == "original" \
        else mr[..., 0]
    synthesis.save_png(synthesis.to_uint8(image), out_path)
    return (us, mr) if preview else None


def _write_outputs(runner, kind, files, dst, axis, args, located):
    """Writes every output (a folder through a staging folder, renamed at the end); returns
    ``[(path, reason)]`` of the refused images."""
    import sys

    from usmr_tf.atomic import cannot_write
    from usmr_tf.export import synthesis

    refused, shown = [], None
    if kind != "folder":
        try:
            shown = _synthesize_file(runner, files[0], dst, axis, args, args.preview, located)
        except Refused as exc:
            refused.append((files[0], str(exc)))
    else:
        # Build the whole folder in a staging folder beside the output, then rename it.
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            staging = pathlib.Path(tempfile.mkdtemp(dir=dst.parent, prefix=f".{dst.name}."))
        except OSError as exc:
            raise cannot_write(dst, exc) from None
        try:
            for path in files:
                try:
                    pair = _synthesize_file(runner, path, staging / _output_name(path), axis,
                                            args, args.preview and shown is None, located)
                except Refused as exc:
                    refused.append((path, str(exc)))
                    continue
                shown = shown or pair
            if len(refused) < len(files):
                staging.chmod(0o755)
                if dst.exists():
                    shutil.rmtree(dst)
                staging.rename(dst)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    for path, reason in refused:
        print(f"usmr synthesize: refused {path}: {reason}; no output written for it",
              file=sys.stderr)
    if args.preview and shown is not None:
        labels = ("input US" if args.align == "none" else "aligned US", "synthesized MR")
        synthesis.save_preview(shown[0], shown[1], args.preview,
                               title=pathlib.Path(args.input).name, labels=labels)
    return refused


def _locate_all(files, args):
    """``{path: Location}`` for ``--align auto`` images (before any output is written)."""
    if args.align != "auto":
        return {}
    images = [p for p in files if _kind(p) == "image"]
    if not images:
        return {}
    from usmr_tf.cli.locate import locate_files, read_images
    from usmr_tf.models.head_locator.head_locator_presets import load_locator

    arrays = read_images(images)
    locator = load_locator(args.locator, args.locator_model)
    return dict(locate_files(locator, images, arrays, args.quiet))


def _ellipse_rows(files, located):
    """``usmr locate``'s rows (pixels) of the located or annotated ellipses."""
    from usmr_tf.cli.locate import row
    from usmr_tf.data.hc18 import annotation_path, load_annotation
    from usmr_tf.models.head_locator.head_locator import Location

    rows = []
    for path in files:
        if _kind(path) != "image":
            continue
        if path in located:
            location = located[path]
        else:
            e = load_annotation(annotation_path(path))
            location = Location(e.center[1], e.center[0], e.a, e.b, e.angle, 1.0, 1.0)
        rows.append(row(path.name, location, None))
    return rows


def run(args):
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    kind, files = _plan(args)
    if args.csv is not None:
        if args.align == "none":
            raise ConfigError("--csv writes the head ellipses: it needs --align auto or hc18")
        if pathlib.Path(args.csv).exists() and not args.overwrite:
            raise DataError("output already exists (pass --overwrite to replace it)", args.csv)
    from usmr_tf.export.runtimes import SavedModelRunner

    if args.preset:
        from usmr_tf.presets import preset_path

        args.model = preset_path(args.preset)
    runner = SavedModelRunner(args.model, version=args.version)
    located = _locate_all(files, args)
    axis = runner.slice_axis if args.axis is None else args.axis
    dst = pathlib.Path(args.output)
    new_folders = [p for p in dst.parents if not p.exists()]  # removed again if nothing is written
    from usmr_tf.atomic import exclusive

    # Two runs writing the same output take turns (a lock beside it): one result, never a
    # mix of both; the second fails if the first wrote it meanwhile (unless --overwrite).
    with exclusive(dst):
        for out in (dst, pathlib.Path(args.preview) if args.preview else None):
            if out is not None and out.exists() and not args.overwrite:
                raise DataError("output already exists (written meanwhile by another run; pass "
                                "--overwrite to replace it)", out)
        refused = _write_outputs(runner, kind, files, dst, axis, args, located)
    if args.csv is not None:
        from usmr_tf.atomic import write_text_atomic
        from usmr_tf.cli.locate import csv_text

        write_text_atomic(args.csv, csv_text(_ellipse_rows(files, located), in_mm=False))
    written = len(files) - len(refused)
    if written:
        print(f"wrote {dst} ({written} input{'s' if written != 1 else ''}"
              f"{f', {len(refused)} refused' if refused else ''}; "
              f"model {runner.model_dir.name} v{runner.version}) - research output, not for "
              "diagnosis")
    else:
        for folder in new_folders:  # deepest first: leave no empty folders behind
            try:
                folder.rmdir()
            except OSError:
                break
        print(f"usmr synthesize: nothing written: every input was refused ({len(refused)})",
              file=sys.stderr)
    return 1 if refused else 0
