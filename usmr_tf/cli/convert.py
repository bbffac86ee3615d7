"""`usmr convert`: an exported SavedModel -> TFLite, ONNX or TF.js, with a parity check.

    usmr convert --to tflite saved_models/NAME model.tflite [--quantize dynamic]
    usmr convert --to onnx   saved_models/NAME model.onnx
    usmr convert --to tfjs   saved_models/NAME web_model/

Only the ``serving_default`` signature (float32 [batch, S, S, 1] -> same) is converted.
After TFLite / ONNX conversion the result is run on a random batch and compared with the
SavedModel (max absolute difference printed; --tolerance makes a larger one an error).
"""

import pathlib

from usmr_tf.errors import ConfigError

DEFAULT_TOLERANCE = {"tflite": 1e-4, "onnx": 1e-4}


def register(subparsers):
    parser = subparsers.add_parser(
        "convert",
        help="convert a SavedModel to TFLite / TF.js / ONNX",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--to", required=True, choices=("tflite", "onnx", "tfjs"))
    parser.add_argument("model", help="saved_models/NAME or saved_models/NAME/VERSION")
    parser.add_argument("out", help="output file (.tflite / .onnx) or folder (tfjs)")
    parser.add_argument("--version", type=int, default=None, help="model version (default latest)")
    parser.add_argument("--quantize", choices=("dynamic",), default=None,
                        help="TFLite only: dynamic-range quantisation (int8 weights)")
    parser.add_argument("--tolerance", type=float, default=None,
                        help="max |converted - SavedModel| allowed (default 1e-4 for float32; "
                        "not checked for quantised models unless given)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.set_defaults(func=run)
    return parser


def run(args):
    from usmr_tf.export import convert
    from usmr_tf.export.runtimes import (
        OnnxRunner,
        SavedModelRunner,
        TFLiteRunner,
        max_abs_difference,
        random_us_batch,
    )

    out = pathlib.Path(args.out)
    if out.exists() and not args.overwrite:
        raise ConfigError(f"{out}: already exists (pass --overwrite to replace it)")
    if args.quantize and args.to != "tflite":
        raise ConfigError("--quantize is only for --to tflite")
    reference = SavedModelRunner(args.model, version=args.version)
    kwargs = {"quantize": args.quantize} if args.to == "tflite" else {}
    path = convert.convert(reference.path, args.to, out, **kwargs)
    size = sum(p.stat().st_size for p in ([path] if path.is_file() else path.rglob("*")))
    print(f"wrote {path} ({size / 1e6:.2f} MB) from {reference.path}")
    if args.to == "tfjs":
        print("check it in Node.js: node examples/tfjs_predict.mjs", path)
        return 0
    runner = (TFLiteRunner if args.to == "tflite" else OnnxRunner)(path)
    error = max_abs_difference(reference, runner, random_us_batch(4, reference.image_size))
    print(f"max |{args.to} - SavedModel| on a random batch of 4: {error:.3g}")
    tolerance = args.tolerance
    if tolerance is None and not args.quantize:
        tolerance = DEFAULT_TOLERANCE[args.to]
    if tolerance is not None and error > tolerance:
        raise ConfigError(f"{path}: parity {error:.3g} exceeds the tolerance {tolerance:g}")
    return 0
