"""Reproduce the paper's Table 1 (and a Fig. 3-style figure) under a fixed step budget.

With seeds (issue 16: every column, three seeds, both data sets, resumable; docs/results.md):

    .venv/bin/python examples/reproduce_table1.py --seeds 0 1 2 --data phantoms real \
        --steps 1000 --size 64 --prepared DATA64 --record docs/table1.json \
        --work-dir /tmp/table1_work --workers 2

(DATA64: `usmr prepare` of recipes/data/preset_v3.yaml with `size: 64`.) The record is
rewritten after every finished cell (model x seed x data set): run the same command again to
go on; --max-cells N stops after N new cells. --workers 2 runs two single-threaded worker
processes on one record (1.7x the throughput of one two-threaded process on 2 cores).

One seed, one table per data set (the earlier form):

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
import pathlib
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from usmr_tf.errors import UsmrError  # noqa: E402
from usmr_tf.evaluation import reproduce as rp  # noqa: E402
from usmr_tf.evaluation.table import COLUMNS  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", choices=rp.DATA_KINDS, nargs="+", default=["phantoms"],
                   help="data set(s); several only with --seeds")
    p.add_argument("--out", help="one-seed form: folder for table1_<data>.{md,json,png}")
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="seeded form: train every column once per seed (e.g. 0 1 2)")
    p.add_argument("--record", default=None,
                   help="seeded form: the JSON record (resumed; .md and .png written beside)")
    p.add_argument("--max-cells", type=int, default=None,
                   help="seeded form: stop after this many new cells")
    p.add_argument("--workers", type=int, default=1,
                   help="seeded form: worker processes sharing the record")
    p.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--precision", default=None, choices=["float32", "mixed_bfloat16"],
                   help="training precision (default: the recipes', float32)")
    p.add_argument("--steps", type=int, default=rp.Budget.steps,
                   help="optimizer steps per model (the same for every model)")
    p.add_argument("--size", type=int, default=rp.Budget.image_size, help="image size (px)")
    p.add_argument("--batch-size", type=int, default=rp.Budget.batch_size)
    p.add_argument("--base-filters", type=int, default=rp.Budget.base_filters)
    p.add_argument("--depth", type=int, default=rp.Budget.depth)
    p.add_argument("--seed", type=int, default=rp.Budget.seed)
    p.add_argument("--models", nargs="+", choices=list(COLUMNS), default=None,
                   help="default: every column (seeded form: all but ours_plus)")
    p.add_argument("--n-eval", type=int, default=None,
                   help="held-out US images scored per model (default 32; seeded form 64)")
    p.add_argument("--n-reference", type=int, default=96, help="reference real MR slices")
    p.add_argument("--registration-size", type=int, default=64)
    p.add_argument("--no-deformation", action="store_true", help="skip the FFD score (fast)")
    p.add_argument("--prepared", default=None,
                   help="real data: a `usmr prepare` cache at --size (else one is prepared)")
    p.add_argument("--data-config", default=str(rp.DATA_CONFIG))
    p.add_argument("--data-root", default=None, help="root of the data config's sources")
    p.add_argument("--work-dir", default=None, help="training runs (default: a temp folder)")
    p.add_argument("--results", default=None,
                   help="with --seeds: a Markdown file whose <!-- table1:NAME --> blocks "
                        "(phantoms, real, prose, cost) are regenerated, e.g. docs/results.md")
    return p.parse_args(argv)


def seeded_main(args, log):
    from usmr_tf.evaluation import seeded

    if args.record is None:
        raise SystemExit("error: --seeds needs --record (the JSON record to write and resume)")
    budget = rp.Budget(steps=args.steps, batch_size=args.batch_size, image_size=args.size,
                       base_filters=args.base_filters, depth=args.depth,
                       precision=args.precision)
    models = tuple(args.models) if args.models else seeded.Spec.models
    spec = seeded.Spec(budget=budget, seeds=tuple(args.seeds), models=models,
                       n_eval=args.n_eval or seeded.Spec.n_eval, n_reference=args.n_reference,
                       registration_size=args.registration_size)
    if args.workers > 1 and args.worker is None:  # the parent: start the workers, wait
        argv = [a for a in sys.argv[1:]]
        procs = [subprocess.Popen([sys.executable, __file__, *argv, "--worker", str(w)])
                 for w in range(args.workers)]
        codes = [p.wait() for p in procs]
        if any(codes):
            return max(codes)
        record = seeded.finish(seeded.load_record(args.record, spec), args.record,
                               results_path=args.results)
    else:
        if args.workers > 1:  # one thread each: small 64 px convolutions scale badly
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        record = seeded.run(args.record, spec, data=tuple(args.data), real_cache=args.prepared,
                            work_dir=args.work_dir, max_cells=args.max_cells,
                            workers=args.workers, worker=args.worker or 0, log=log,
                            results_path=None if args.worker is not None else args.results)
        if args.worker is not None:
            return 0
    done = sum(len(s) for m in record["cells"].values() for s in m.values())
    total = len(spec.seeds) * len(spec.models) * len(args.data)
    print(pathlib.Path(args.record).with_suffix(".md").read_text())
    print(f"{done} of {total} cells in {args.record}")
    return 0


def main(argv=None):
    args = parse_args(argv)

    def log(message):
        print(message, file=sys.stderr, flush=True)

    try:
        if args.seeds is not None:
            return seeded_main(args, log)
        if len(args.data) != 1 or args.out is None:
            raise SystemExit("error: without --seeds give one --data and --out")
        budget = rp.Budget(steps=args.steps, batch_size=args.batch_size, image_size=args.size,
                           base_filters=args.base_filters, depth=args.depth, seed=args.seed,
                           precision=args.precision)
        result = rp.reproduce(
            args.data[0], args.out, budget=budget, models=args.models or list(COLUMNS),
            n_eval=args.n_eval or 32,
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
