"""`usmr prepare CONFIG.yaml --out DIR`: NIfTI volumes / PNG images -> a slice cache."""

import sys


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
    parser.set_defaults(func=run)
    return parser


def run(args):
    from usmr_tf.data.prepare import prepare_dataset

    def log(message):
        print(message, file=sys.stderr)

    out, manifest, reused = prepare_dataset(args.config, args.out, data_root=args.data_root,
                                            force=args.force, log=log)
    counts = ", ".join(f"{m} {c['train']} train / {c['test']} test"
                       for m, c in sorted(manifest["counts"].items()))
    state = "up to date" if reused else f"prepared in {manifest['seconds']:.1f} s"
    print(f"{out}: {state} ({counts}); key {manifest['key'][:12]}")
    return 0
