"""`usmr convert`: an exported SavedModel -> TFLite, ONNX or TF.js, with a parity check.

    usmr convert --to tflite saved_models/NAME model.tflite [--quantize dynamic]
    usmr convert --to onnx   saved_models/NAME model.onnx
    usmr convert --to tfjs   saved_models/NAME web_model/
    usmr convert --to tflite --preset fetal_hc18_v2 model.tflite   (or --model saved_models/NAME)

Only the ``serving_default`` signature (float32 [batch, S, S, 1] -> same) is converted.
After TFLite / ONNX conversion the result is run on a random batch and compared with the
SavedModel (max absolute difference printed; --tolerance makes a larger one an error).
A progress bar follows the steps (load, convert, parity check); --quiet hides it.
"""

import pathlib

from usmr_tf.cli import quiet
from usmr_tf.cli.common import MODEL_HELP, PRESET_HELP, add_quiet_arg, model_path, progress
from usmr_tf.errors import ConfigError

DEFAULT_TOLERANCE = {"tflite": 1e-4, "onnx": 1e-4}


def register(subparsers):
    parser = subparsers.add_parser(
        "convert",
        help="convert a SavedModel to TFLite / TF.js / ONNX",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--to", required=True, choices=("tflite", "onnx", "tfjs"))
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="[MODEL] OUT: the model (saved_models/NAME[/VERSION]; or name "
                        "it with --model / --preset) and the output file (.tflite / .onnx) or "
                        "folder (tfjs)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", help=MODEL_HELP)
    source.add_argument("--preset", help=PRESET_HELP)
    parser.add_argument("--version", type=int, default=None, help="model version (default latest)")
    parser.add_argument("--quantize", choices=("dynamic",), default=None,
                        help="TFLite only: dynamic-range quantisation (int8 weights)")
    parser.add_argument("--tolerance", type=float, default=None,
                        help="max |converted - SavedModel| allowed (default 1e-4 for float32; "
                        "not checked for quantised models unless given)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    add_quiet_arg(parser)
    parser.set_defaults(func=run)
    return parser


def _model_and_out(args):
    """(model folder, output path) from `[MODEL] OUT` and --model / --preset."""
    flag = "--model" if args.model else "--preset" if args.preset else None
    if flag and len(args.paths) != 1:
        raise ConfigError(f"with {flag}, give only the output: "
                          f"usmr convert --to {args.to} {flag} {args.model or args.preset} OUT")
    if not flag and len(args.paths) != 2:
        raise ConfigError(f"give the model and the output: usmr convert --to {args.to} MODEL OUT "
                          f"(or --preset NAME OUT)")
    if flag:
        return model_path(args), pathlib.Path(args.paths[0])
    return args.paths[0], pathlib.Path(args.paths[1])


def run(args):
    from usmr_tf.export import convert
    from usmr_tf.export.runtimes import (
        OnnxRunner,
        SavedModelRunner,
        TFLiteRunner,
        max_abs_difference,
        random_us_batch,
    )

    model, out = _model_and_out(args)
    if out.exists() and not args.overwrite:
        raise ConfigError(f"{out}: already exists (pass --overwrite to replace it)")
    if args.quantize and args.to != "tflite":
        raise ConfigError("--quantize is only for --to tflite")
    steps = 2 if args.to == "tfjs" else 3
    with progress(steps, f"convert to {args.to}", "step", args.quiet) as bar:
        bar.set_postfix_str("load SavedModel")
        reference = SavedModelRunner(model, version=args.version)
        bar.update(1)
        bar.set_postfix_str(f"convert ({args.to})")
        kwargs = {"quantize": args.quantize} if args.to == "tflite" else {}
        path = convert.convert(reference.path, args.to, out, **kwargs)
        bar.update(1)
        if args.to != "tfjs":
            bar.set_postfix_str("parity check")
            with quiet.filtered_stderr():  # the TFLite interpreter announces its delegate
                runner = (TFLiteRunner if args.to == "tflite" else OnnxRunner)(path)
                error = max_abs_difference(reference, runner,
                                           random_us_batch(4, reference.image_size))
            bar.update(1)
        bar.set_postfix_str("done")
    size = sum(p.stat().st_size for p in ([path] if path.is_file() else path.rglob("*")))
    print(f"wrote {path} ({size / 1e6:.2f} MB) from {reference.path}")
    if args.to == "tfjs":
        print("check it in Node.js: node examples/tfjs_predict.mjs", path)
        return 0
    print(f"max |{args.to} - SavedModel| on a random batch of 4: {error:.3g}")
    tolerance = args.tolerance
    if tolerance is None and not args.quantize:
        tolerance = DEFAULT_TOLERANCE[args.to]
    if tolerance is not None and error > tolerance:
        raise ConfigError(f"{path}: parity {error:.3g} exceeds the tolerance {tolerance:g}")
    return 0
