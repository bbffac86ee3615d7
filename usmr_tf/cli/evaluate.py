"""`usmr evaluate`: synthesize MR from US with an exported model and score it.

    usmr evaluate --model saved_models/ours --us us.npy --mr real_mr/ [--paired-mr mr.npy]
                  [--json out.json]
    usmr evaluate --preset fetal_hc18_v2 --us prepared/ --mr prepared/ [--quiet]

Prints a table (output diversity, deformation score, SWD, realism test, structure score,
outline check; MAE/PSNR/SSIM with --paired-mr) next to the reference rows every score is read
against: `identity` (the US passed through unchanged) and `real MR` (real slices of other
subjects, --mr-reference; for a `usmr prepare` folder the other split by default). Writes the
numbers plus per-image values as JSON. Research output, not for diagnosis.
"""

import json
import pathlib
import sys

from usmr_tf.cli.common import add_model_args, add_quiet_arg, model_path, progress

RESEARCH_NOTICE = "Research output, not for diagnosis."
REALISM_REPEATS = 5  # realism test repeats of `usmr evaluate` (mean ± sd; docs/metrics.md)


def register(subparsers):
    parser = subparsers.add_parser(
        "evaluate",
        help="score synthesized MR (deformation, SWD, structure)",
        description=__doc__.split("\n\n")[0] + " " + RESEARCH_NOTICE,
    )
    add_model_args(parser)
    parser.add_argument("--version", type=int, default=None, help="model version (default latest)")
    parser.add_argument("--us", required=True,
                        help="input US: .npy [N,H,W(,1)] in [-1,1] or uint8, PNG/JPEG file or "
                             "folder, a `usmr prepare` dataset folder, or a NIfTI volume")
    parser.add_argument("--mr", required=True,
                        help="real (unpaired) MR: reference set for SWD and plane-matching "
                             "candidates for the deformation score; same formats as --us")
    parser.add_argument("--paired-mr", help="ground-truth MR paired with --us (phantoms): adds "
                                            "MAE, PSNR, SSIM")
    parser.add_argument("--mr-reference",
                        help="real MR of OTHER subjects than --mr, scored as if synthesized "
                             "(the 'real MR' floor row); default for a `usmr prepare` folder: "
                             "its other split")
    parser.add_argument("--no-references", action="store_true",
                        help="skip the identity and real-MR reference rows")
    parser.add_argument("--split", default="test", choices=("train", "test", "heldout"),
                        help="split read from `usmr prepare` dataset folders (default test)")
    parser.add_argument("--mr-split", default=None, choices=("train", "test", "heldout"),
                        help="split read for --mr from a `usmr prepare` folder (default: --split;"
                             " `heldout` = the left-out MR source of preset_v2)")
    parser.add_argument("--json", help="write the results here (atomically)")
    parser.add_argument("--max-images", type=int, default=64,
                        help="use at most this many US images (default 64; 0 = all)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--top-k", type=int, default=3,
                        help="real MR candidates refined by affine NMI in plane matching")
    parser.add_argument("--registration-size", type=int, default=64,
                        help="working resolution of the FFD registration (px)")
    parser.add_argument("--deformation-equalise", action="store_true",
                        help="register rank-equalised images: a deformation score blind to "
                             "contrast (the published one is lower on fainter images whose "
                             "structures do not match; docs/metrics.md)")
    parser.add_argument("--no-deformation", action="store_true",
                        help="skip the (slowest) registration-based score")
    parser.add_argument("--outline-scale", type=float, default=None,
                        help="outline check: the MR head's size over the US head mask's "
                             "(default 0.903 / 1.03, US aligned like HC18: docs/metrics.md); "
                             "0 leaves the check out (US aligned another way)")
    parser.add_argument("--no-realism", action="store_true",
                        help="skip the realism test (a small CNN trained on 5 folds, "
                             "--realism-repeats times, to tell real MR from the outputs; ~3 s "
                             "a test on 2 CPU cores at ~80 images a class)")
    parser.add_argument("--realism-repeats", type=int, default=REALISM_REPEATS,
                        help="run the realism test this many times with other seeds and report "
                             "the mean and sd (one test's value moves by 0.01-0.10 (sd) with its "
                             "seed or the CPU thread count: docs/metrics.md); 1 = the single "
                             "test of results dated before 2026-12-06 (default %(default)s)")
    add_quiet_arg(parser)
    parser.set_defaults(func=run)
    return parser


def _synthesize(runner, us, batch_size, quiet=False):
    import numpy as np

    from usmr_tf.errors import DataError

    out = []
    with progress(len(us), "synthesize", "image", quiet) as bar:
        for i in range(0, len(us), batch_size):
            out.append(runner(us[i:i + batch_size]))
            bar.update(len(out[-1]))
    synth = np.concatenate(out).astype(np.float32)
    if synth.shape != us.shape:
        raise DataError(f"model returned shape {synth.shape}, expected {us.shape}", runner.path)
    if not np.isfinite(synth).all():
        raise DataError("model output contains NaN or Inf", runner.path)
    return np.clip(synth, -1.0, 1.0)


def _reference_mr(args, size, load_image_set):
    """The real-MR reference set: --mr-reference, else the other split of a prepared --mr."""
    from usmr_tf.metrics.image_sets import _is_prepared

    if args.mr_reference:
        return load_image_set(args.mr_reference, size, modality="mr", split="train")
    mr = pathlib.Path(args.mr)
    if mr.is_dir() and _is_prepared(mr, "mr"):
        other = "train" if (args.mr_split or args.split) != "train" else "test"
        try:
            return load_image_set(mr, size, modality="mr", split=other)
        except Exception:  # noqa: BLE001 - no other split: no real-MR row
            return None
    return None


def run(args):
    from usmr_tf.errors import ConfigError
    from usmr_tf.atomic import write_text_atomic
    from usmr_tf.export.runtimes import SavedModelRunner
    from usmr_tf.metrics import evaluation, outline
    from usmr_tf.metrics.deformation import RegistrationConfig
    from usmr_tf.metrics.image_sets import load_image_set
    from usmr_tf.metrics.realism import RealismConfig

    if args.max_images < 0 or args.batch_size < 1 or args.top_k < 1:
        raise ConfigError("--max-images must be >= 0, --batch-size and --top-k >= 1")
    if not 32 <= args.registration_size <= 256:
        raise ConfigError("--registration-size must be in [32, 256]")
    if args.realism_repeats < 1 and not args.no_realism:
        raise ConfigError("--realism-repeats must be >= 1")
    outline_scale = outline.DEFAULT_SCALE if args.outline_scale is None else args.outline_scale
    if not 0.0 <= outline_scale <= 2.0:
        raise ConfigError("--outline-scale must be in [0, 2] (0 = no outline check)")
    outline_scale = outline_scale or None
    if args.json and not pathlib.Path(args.json).parent.resolve().is_dir():
        raise ConfigError(f"{args.json}: folder does not exist")
    runner = SavedModelRunner(model_path(args), version=args.version)
    realism_config = None if args.no_realism else RealismConfig(repeats=args.realism_repeats)
    size = runner.image_size
    limit = args.max_images or None
    us = load_image_set(args.us, size, limit=limit, modality="us", split=args.split)
    real_mr = load_image_set(args.mr, size, modality="mr", split=args.mr_split or args.split)
    paired = (load_image_set(args.paired_mr, size, limit=limit, split=args.split)
              if args.paired_mr else None)
    synth = _synthesize(runner, us, args.batch_size, args.quiet)
    registration = RegistrationConfig(size=args.registration_size,
                                      equalise=args.deformation_equalise)
    total = 0 if args.no_deformation else len(us)
    reference = None if args.no_references else _reference_mr(args, size, load_image_set)
    tests = evaluation.realism_test_count(
        len(us), len(real_mr), realism_config, None if reference is None else len(reference),
        with_references=not args.no_references)
    with progress(tests, "realism test", "test", args.quiet or not tests) as realism_bar:
        with progress(total, "deformation score", "image", args.quiet or not total) as bar:
            result = evaluation.evaluate_synthesis(
                us, synth, real_mr, paired_mr=paired, with_deformation=not args.no_deformation,
                top_k=args.top_k, registration=registration,
                progress=bar.update, realism_config=realism_config, outline_scale=outline_scale,
                realism_progress=realism_bar.update)
        references = {}
        if not args.no_references:
            references = evaluation.evaluate_references(
                us, real_mr, reference, with_deformation=not args.no_deformation,
                top_k=args.top_k, registration=registration, realism_config=realism_config,
                outline_scale=outline_scale, realism_progress=realism_bar.update)
    print(f"model {runner.path} (image size {size}); {len(us)} US, {len(real_mr)} real MR")
    print(evaluation.format_table(result["metrics"]))
    if references:
        print()
        print(evaluation.format_comparison({"model": result["metrics"], **references}))
    print(RESEARCH_NOTICE)
    if args.json:
        report = {
            "model": str(runner.path),
            "preset": args.preset,
            "version": runner.version,
            "image_size": size,
            "inputs": {"us": str(args.us), "mr": str(args.mr), "paired_mr": args.paired_mr,
                       "split": args.split, "mr_split": args.mr_split or args.split,
                       "mr_reference": args.mr_reference},
            "registration": {"size": args.registration_size,
                             "equalise": args.deformation_equalise},
            "outline_scale": outline_scale,
            "counts": {"us": len(us), "real_mr": len(real_mr)},
            **result,
            "references": references,
            "notice": RESEARCH_NOTICE,
        }
        text = json.dumps(evaluation.finite_or_none(report), indent=2)
        write_text_atomic(args.json, text + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0
