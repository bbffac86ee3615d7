"""Reproduce the paper's Table 1 (and a Fig. 3-style figure) under a fixed step budget.

    .venv/bin/python examples/reproduce_table1.py --data phantoms --steps 600 --size 64 \
        --out /tmp/table1
    .venv/bin/python examples/reproduce_table1.py --data real --data-root ../shared/data \
        --steps 600 --size 64 --out /tmp/table1

Writes OUT/table1_<data>.md (the table), .json (all numbers, budget, timings) and .png (the
figure); training runs go to --work-dir (a temporary folder by default, never the repository).
Every model gets the same number of optimizer steps. See docs/results.md.
Research output, not for diagnosis.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from usmr_tf.errors import UsmrError  # noqa: E402
from usmr_tf.evaluation import reproduce as rp  # noqa: E402
from usmr_tf.evaluation.table import COLUMNS  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", choices=rp.DATA_KINDS, default="phantoms")
    p.add_argument("--out", required=True, help="folder for table1_<data>.{md,json,png}")
    p.add_argument("--steps", type=int, default=rp.Budget.steps,
                   help="optimizer steps per model (the same for every model)")
    p.add_argument("--size", type=int, default=rp.Budget.image_size, help="image size (px)")
    p.add_argument("--batch-size", type=int, default=rp.Budget.batch_size)
    p.add_argument("--base-filters", type=int, default=rp.Budget.base_filters)
    p.add_argument("--depth", type=int, default=rp.Budget.depth)
    p.add_argument("--seed", type=int, default=rp.Budget.seed)
    p.add_argument("--models", nargs="+", choices=list(COLUMNS), default=list(COLUMNS))
    p.add_argument("--n-eval", type=int, default=32, help="held-out US images scored per model")
    p.add_argument("--n-reference", type=int, default=96, help="reference real MR slices")
    p.add_argument("--registration-size", type=int, default=64)
    p.add_argument("--no-deformation", action="store_true", help="skip the FFD score (fast)")
    p.add_argument("--prepared", default=None,
                   help="real data: a `usmr prepare` cache at --size (else one is prepared)")
    p.add_argument("--data-config", default=str(rp.DATA_CONFIG))
    p.add_argument("--data-root", default=None, help="root of the data config's sources")
    p.add_argument("--work-dir", default=None, help="training runs (default: a temp folder)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)

    def log(message):
        print(message, file=sys.stderr, flush=True)

    try:
        budget = rp.Budget(steps=args.steps, batch_size=args.batch_size, image_size=args.size,
                           base_filters=args.base_filters, depth=args.depth, seed=args.seed)
        result = rp.reproduce(
            args.data, args.out, budget=budget, models=args.models, n_eval=args.n_eval,
            n_reference=args.n_reference, with_deformation=not args.no_deformation,
            registration_size=args.registration_size, prepared=args.prepared,
            data_config=args.data_config, data_root=args.data_root, work_dir=args.work_dir,
            log=log)
    except UsmrError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(result.markdown)
    print("wrote " + ", ".join(str(p) for p in result.paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
