"""`usmr prepare CONFIG.yaml --out DIR`: NIfTI volumes / PNG images -> a slice cache."""

import contextlib
import sys

from usmr_tf.cli.common import add_quiet_arg, progress


def register(subparsers):
    parser = subparsers.add_parser(
        "prepare",
        help="prepare a slice cache from NIfTI volumes / PNG images",
        description="Reads the sources listed in CONFIG (YAML, see recipes/data/), cuts and "
        "normalises 2D slices, splits subjects 80/20 and writes DIR atomically "
        "(DIR/manifest.json, DIR/{us,mr}/{train,test}.npy + .json). A DIR prepared with the "
        "same parameters and input files is reused.",
    )
    parser.add_argument("config", help="preparation config (YAML)")
    parser.add_argument("--out", required=True, help="output dataset directory")
    parser.add_argument("--data-root", default=None,
                        help="folder the config's source roots are relative to "
                        "(overrides the config's data_root)")
    parser.add_argument("--force", action="store_true",
                        help="prepare again even if DIR is up to date")
    add_quiet_arg(parser)
    parser.set_defaults(func=run)
    return parser


@contextlib.contextmanager
def _file_progress(args):
    """A bar over the input files while `prepare_dataset` reads them (none when DIR is reused).

    It counts calls of the per-file reader `usmr_tf.data.prepare._slices_of`; a progress hook
    in `prepare_arrays` itself would be cleaner (see the hand-off note of issue 9). Yields
    the log function (messages go above the bar).
    """
    from usmr_tf.data import prepare as lib

    reader, state = lib._slices_of, {}

    def counted(*a, **kw):
        if "bar" not in state:
            config = lib.resolve_config(lib.load_config(args.config), args.data_root)
            total = sum(len(items) for items in lib.input_files(config).values())
            state["bar"] = progress(total, "prepare", "file", args.quiet)
        result = reader(*a, **kw)
        state["bar"].update(1)
        return result

    def log(message):
        if "bar" in state and not args.quiet:
            state["bar"].write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr)

    lib._slices_of = counted
    try:
        yield log
    finally:
        lib._slices_of = reader
        if "bar" in state:
            state["bar"].close()


def run(args):
    from usmr_tf.data.prepare import prepare_dataset

    with _file_progress(args) as log:
        out, manifest, reused = prepare_dataset(args.config, args.out,
                                                data_root=args.data_root, force=args.force,
                                                log=log)
    counts = ", ".join(f"{m} {c['train']} train / {c['test']} test"
                       for m, c in sorted(manifest["counts"].items()))
    state = "up to date" if reused else f"prepared in {manifest['seconds']:.1f} s"
    print(f"{out}: {state} ({counts}); key {manifest['key'][:12]}")
    return 0
