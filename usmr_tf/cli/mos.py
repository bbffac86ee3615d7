"""`usmr mos`: Mean Opinion Score study kit (paper §3.2, Table 1).

    usmr mos make --images ours=synth/ours cyclegan=synth/cyclegan --real real_mr/ \\
                  --n 80 --out mos_page --seed 0 [--key mos_page-key.json] [--size 128]
    usmr mos score ratings/*.csv --key mos_page-key.json [--json mos.json]

`make` writes a self-contained `index.html` (open it from disk or serve it) and the key file
that maps image ids to methods (beside the page folder, never inside it). `score` prints the
MOS per method and rater group with 95% t-distribution confidence intervals.
"""

import json
import sys


def register(subparsers):
    parser = subparsers.add_parser(
        "mos", help="build a Mean Opinion Score study page and score ratings",
        description=__doc__.split("\n\n")[0])
    actions = parser.add_subparsers(dest="mos_command", metavar="ACTION")
    actions.required = True

    make = actions.add_parser("make", help="build the blinded rating page and its key")
    make.add_argument("--images", nargs="+", required=True, metavar="METHOD=PATH",
                      help="synthesized MR per method: a folder of PNG/JPEG or a .npy / NIfTI")
    make.add_argument("--real", required=True, help="real MR images (same formats)")
    make.add_argument("--n", type=int, default=80,
                      help="images on the page in total, split evenly over the methods and real "
                           "MR (default 80, as in the paper)")
    make.add_argument("--out", required=True, help="page folder (index.html is written there)")
    make.add_argument("--key", help="key file (default: <out>-key.json beside the folder)")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--size", type=int, default=128, help="image size on the page (px)")
    make.set_defaults(func=run_make)

    score = actions.add_parser("score", help="MOS per method and rater group from rating CSVs")
    score.add_argument("csv", nargs="+", help="rating CSV files downloaded from the page")
    score.add_argument("--key", required=True, help="the key file written by `mos make`")
    score.add_argument("--json", help="write the table here (atomically)")
    score.set_defaults(func=run_score)
    return parser


def _parse_sources(specs, real):
    from usmr_tf.errors import ConfigError
    from usmr_tf.metrics.mos import REAL

    sources = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        name = name.strip()
        if not sep or not name or not path:
            raise ConfigError(f"--images {spec!r}: expected METHOD=PATH")
        if name == REAL or name in sources:
            raise ConfigError(f"--images {spec!r}: method name {name!r} is reserved or repeated")
        sources[name] = path
    sources[REAL] = real
    return sources


def run_make(args):
    from usmr_tf.errors import ConfigError
    from usmr_tf.metrics.image_sets import load_image_set
    from usmr_tf.metrics.mos import build_mos_page

    if not 16 <= args.size <= 1024:
        raise ConfigError("--size must be in [16, 1024]")
    paths = _parse_sources(args.images, args.real)
    sources = {name: load_image_set(path, args.size) for name, path in paths.items()}
    page, key_path, key = build_mos_page(sources, args.n, args.out, seed=args.seed,
                                         key_path=args.key, source_paths=paths)
    print(f"wrote {page} ({key['n']} images from {len(sources)} sources) and the key {key_path}")
    print("Share only the page folder; keep the key file away from the raters.")
    return 0


def run_score(args):
    from usmr_tf.atomic import write_text_atomic
    from usmr_tf.metrics import mos

    key = mos.load_key(args.key)
    ratings = mos.read_ratings(args.csv, key)
    table = mos.mos_table(ratings, key)
    raters = sorted({(rater, group) for rater, group, _ in ratings})
    print(f"{len(ratings)} ratings from {len(raters)} raters "
          f"({', '.join(f'{g}: {sum(1 for _, x in raters if x == g)}' for g in mos.GROUPS)})")
    print(mos.format_mos_table(table))
    print("95% CI: mean ± t(0.975, n-1) * sd / sqrt(n) over the pooled ratings of each cell.")
    if args.json:
        report = {"study_id": key.get("study_id"), "n_ratings": len(ratings),
                  "confidence": 0.95, "interval": "t-distribution over pooled ratings",
                  "mos": table}
        write_text_atomic(args.json, json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0
