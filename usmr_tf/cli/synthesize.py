"""`usmr synthesize`: US -> MR with an exported model, for a NIfTI volume, a PNG/JPEG or a folder.

    usmr synthesize --model saved_models/NAME in.nii.gz out.nii.gz [--preview fig.png]
    usmr synthesize --model saved_models/NAME us.png mr.png
    usmr synthesize --model saved_models/NAME us_dir/ mr_dir/
    usmr synthesize --preset fetal_hc18_v2 us.png mr.png
    usmr synthesize --preset fetal_hc18_v2 --align-hc18 010_HC.png mr.png [--output-frame aligned]

Volumes are synthesized slice by slice along the model's slice axis (``usmr.json``), in
batches, with a progress bar; the output keeps the input's affine, header geometry and voxel
grid (float32, [-1, 1], -1 = background). Images give 8-bit PNGs of the input's size.
``--align-hc18`` preprocesses HC18 images as the preset was trained (aligned with their
``*_Annotation.png`` ellipse) and maps the MR back into the input's frame (or, with
``--output-frame aligned``, writes the aligned ``image_size``-square MR). An
existing output is kept unless ``--overwrite``; a failure leaves no partial output.
Outputs are research images, not for diagnosis.
"""

import pathlib
import shutil
import tempfile

from usmr_tf.errors import ConfigError, DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
NIFTI_SUFFIXES = (".nii", ".nii.gz")


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
    parser.add_argument("--align-hc18", action="store_true",
                        help="images only: align each image with its HC18 <stem>_Annotation.png "
                             "ellipse before synthesis (the preset's training preprocessing); "
                             "folders skip *_Annotation.png files")
    parser.add_argument("--output-frame", choices=("original", "aligned"), default="original",
                        help="with --align-hc18: write the MR in the input image's frame "
                             "(default) or the aligned image_size x image_size frame")
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
    from usmr_tf.atomic import atomic_path

    parent = out.parent
    missing = []
    while not parent.exists() and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    try:
        with atomic_path(out):  # a temp file beside `out`, removed; `out` is not touched
            raise _Probed()
    except _Probed:
        pass
    finally:
        for folder in missing:  # leave no empty folders behind
            try:
                folder.rmdir()
            except OSError:
                break


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
                       and not (args.align_hc18 and _is_annotation(p)))
        if not files:
            raise DataError("folder has no .nii/.nii.gz/.png/.jpg/.jpeg file", src)
        names = [_output_name(p) for p in files]
        if len(set(names)) != len(names):
            raise DataError("two inputs would give the same output name (e.g. a.png and a.jpg)",
                            src)
        if dst.exists() and not dst.is_dir():
            raise DataError("output for a folder input must be a folder", dst)
        if args.align_hc18:
            _check_aligned_inputs(files)
        return kind, files
    expected = NIFTI_SUFFIXES if kind == "nifti" else (".png",)
    if not str(dst).lower().endswith(expected) or dst.is_dir():
        raise DataError(f"output for a {kind} input must be a file ending with "
                        f"{' or '.join(expected)}", dst)
    if args.align_hc18:
        _check_aligned_inputs([src])
    return kind, [src]


def _progress(total, quiet):
    from tqdm import tqdm

    return tqdm(total=total, unit="slice", desc="synthesize", disable=True if quiet else None)


def _synthesize_file(runner, path, out_path, axis, args, preview):
    from usmr_tf.export import synthesis

    if _kind(path) == "nifti":
        volume, us, geometry = synthesis.volume_slices(path, axis, runner.image_size)
        with _progress(len(us), args.quiet) as bar:
            mr = synthesis.predict_batched(runner, us, args.batch_size, bar)
        synthesis.save_nifti_like(synthesis.mr_to_volume(mr, geometry), volume, out_path)
        middle = len(us) // 2
        return (us[middle], mr[middle]) if preview else None
    if args.align_hc18:
        us, transform = synthesis.aligned_image_slice(path, runner.image_size)
        mr = synthesis.predict_batched(runner, us[None], args.batch_size)[0]
        mr = synthesis.mask_aligned_mr(mr, transform)
        if args.output_frame == "original":
            image = synthesis.unalign_mr(mr, transform)  # [h, w], the input's frame
        else:
            image = mr[..., 0]
        synthesis.save_png(synthesis.to_uint8(image), out_path)
        return (us, mr) if preview else None
    us, fit = synthesis.image_slice(path, runner.image_size)
    mr = synthesis.predict_batched(runner, us[None], args.batch_size)[0]
    synthesis.save_png(synthesis.mr_to_image(mr, fit), out_path)
    return (us, mr) if preview else None


def _write_outputs(runner, kind, files, dst, axis, args):
    from usmr_tf.atomic import cannot_write
    from usmr_tf.export import synthesis

    if kind != "folder":
        shown = _synthesize_file(runner, files[0], dst, axis, args, args.preview)
    else:
        # Build the whole folder in a staging folder beside the output, then rename it.
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            staging = pathlib.Path(tempfile.mkdtemp(dir=dst.parent, prefix=f".{dst.name}."))
        except OSError as exc:
            raise cannot_write(dst, exc) from None
        try:
            shown = None
            for path in files:
                pair = _synthesize_file(runner, path, staging / _output_name(path), axis, args,
                                        args.preview and shown is None)
                shown = shown or pair
            staging.chmod(0o755)
            if dst.exists():
                shutil.rmtree(dst)
            staging.rename(dst)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    if args.preview and shown is not None:
        labels = ("aligned US" if args.align_hc18 else "input US", "synthesized MR")
        synthesis.save_preview(shown[0], shown[1], args.preview,
                               title=pathlib.Path(args.input).name, labels=labels)


def run(args):
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.output_frame == "aligned" and not args.align_hc18:
        raise ConfigError("--output-frame aligned needs --align-hc18")
    kind, files = _plan(args)
    from usmr_tf.export.runtimes import SavedModelRunner

    if args.preset:
        from usmr_tf.presets import preset_path

        args.model = preset_path(args.preset)
    runner = SavedModelRunner(args.model, version=args.version)
    axis = runner.slice_axis if args.axis is None else args.axis
    dst = pathlib.Path(args.output)
    from usmr_tf.atomic import exclusive

    # Two runs writing the same output take turns (a lock beside it): one result, never a
    # mix of both; the second fails if the first wrote it meanwhile (unless --overwrite).
    with exclusive(dst):
        for out in (dst, pathlib.Path(args.preview) if args.preview else None):
            if out is not None and out.exists() and not args.overwrite:
                raise DataError("output already exists (written meanwhile by another run; pass "
                                "--overwrite to replace it)", out)
        _write_outputs(runner, kind, files, dst, axis, args)
    print(f"wrote {dst} ({len(files)} input{'s' if len(files) != 1 else ''}; "
          f"model {runner.model_dir.name} v{runner.version}) - research output, not for diagnosis")
    return 0
