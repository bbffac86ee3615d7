"""`usmr` command line: one module per subcommand under ``usmr_tf.cli``.

Each subcommand module defines ``register(subparsers)`` which adds its parser and
sets ``func=run`` (a callable taking the parsed ``argparse.Namespace`` and returning
an exit code). Modules are imported lazily only for the command being run, so
``usmr --help`` stays fast.

Quiet by default: TensorFlow's start-up lines (CUDA, oneDNN, absl) are hidden
(`usmr_tf.cli.quiet`); ``usmr --verbose ...`` (the flag may also follow the command) or
``USMR_VERBOSE=1`` shows them.
"""

import argparse
import importlib
import importlib.util
import sys

from usmr_tf.cli import quiet
from usmr_tf.errors import UsmrError

# name -> (module, one-line help). Keep sorted by workflow order.
SUBCOMMANDS = {
    "prepare": ("usmr_tf.cli.prepare", "prepare a slice cache from NIfTI volumes / PNG images"),
    "train": ("usmr_tf.cli.train", "train a model from a recipe with model.fit"),
    "export": ("usmr_tf.cli.export", "export the inference graph as a TF Serving SavedModel"),
    "locate": ("usmr_tf.cli.locate", "find the fetal head ellipse in raw US images (HC18 CSV)"),
    "synthesize": ("usmr_tf.cli.synthesize", "synthesize MR from US (NIfTI, PNG or a folder)"),
    "convert": ("usmr_tf.cli.convert", "convert a SavedModel to TFLite / TF.js / ONNX"),
    "evaluate": ("usmr_tf.cli.evaluate", "score synthesized MR (deformation, SWD, structure)"),
    "mos": ("usmr_tf.cli.mos", "build a Mean Opinion Score study page and score ratings"),
    "presets": ("usmr_tf.cli.presets", "list the pretrained models in saved_models/"),
}


def _available():
    found = {}
    for name, (module, help_text) in SUBCOMMANDS.items():
        if importlib.util.find_spec(module) is not None:
            found[name] = (module, help_text)
    return found


def build_parser(load=None):
    parser = argparse.ArgumentParser(
        prog="usmr",
        description="Fetal US -> MRI-like synthesis (research use only, not for diagnosis).",
    )
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's own start-up and log lines (hidden by default; "
                        f"also ${quiet.VERBOSE_ENV}=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in _available().items():
        if load == name:
            importlib.import_module(module).register(sub)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in argv
    if verbose:  # accepted before or after the command: `usmr synthesize --verbose ...`
        argv = ["--verbose"] + [a for a in argv if a != "--verbose"]
    quiet.install(verbose=True if verbose else None)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(load=command if command in _available() else None)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(args.func(args) or 0)
    except UsmrError as exc:
        print(f"usmr {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # an output that cannot be written (file in the way, read-only, full)
        print(f"usmr {args.command}: error: {os_error_message(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"usmr {args.command}: interrupted", file=sys.stderr)
        return 130


def os_error_message(exc):
    """`PATH: problem` for an `OSError` (both paths of a failed rename or link)."""
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    problem = exc.strerror or str(exc) or type(exc).__name__
    return f"{' -> '.join(paths)}: {problem}" if paths else f"{problem} ({type(exc).__name__})"


if __name__ == "__main__":
    sys.exit(main())
