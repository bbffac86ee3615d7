"""How much of a gap between two models is the metric's own sampling (issue 18): the SWD's
patch sampling, or (`--metric realism`) the realism test's seed.

    .venv/bin/python benchmarks/swd_seeds.py --data DIR --model A --model B \
        --ref NAME=DIR:SPLIT [--ref ...] [--seeds 10] [--metric swd|realism] [--json OUT.json]

Synthesizes the MR of DIR's test US with each export (`synthesize_slices`; `--model identity`
passes the US through) and computes the SWD (`usmr_tf.metrics.swd`, the measure `usmr
evaluate` reports with seed 0) against each reference MR set (`NAME=DIR:SPLIT`, a prepared
folder's MR split) with patch-sampling seeds 0..N-1, or the realism test's accuracy
(`usmr_tf.metrics.realism`, one test per seed: subsample, folds, initial weights and
augmentation; seed 0 is a single test as `usmr evaluate --realism-repeats 1` runs it); prints
each model's mean ± sd and, per seed, every model's difference from the first (for the SWD
paired: the same patches' directions and positions for both). A measurement, not a test.
Research numbers, not for diagnosis.
"""

import argparse
import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from usmr_tf.data import cache  # noqa: E402
from usmr_tf.export.synthesis import synthesize_slices  # noqa: E402
from usmr_tf.metrics import realism, swd  # noqa: E402

# metric -> its values with seeds 0..n-1 (the realism test's repeats are those seeds' tests)
METRICS = {
    "swd": lambda mr, real, n: [swd.swd(mr, real, seed=s)["mean"] for s in range(n)],
    "realism": lambda mr, real, n: realism.realism_test(
        real, mr, realism.RealismConfig(repeats=n))["repeat_accuracy"],
}


def reference(text):
    """`NAME=DIR:SPLIT` -> (NAME, DIR, SPLIT)."""
    name, _, where = text.partition("=")
    folder, split = cache.split_address(where)
    if not name or not folder or split is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=DIR:SPLIT (SPLIT one of "
                                         f"{', '.join(cache.SPLITS)})")
    return name, folder, split


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True,
                        help="prepared folder: its us/test are synthesized")
    parser.add_argument("--model", action="append", required=True,
                        help="an export, or identity (the US passed through) (repeat)")
    parser.add_argument("--ref", action="append", required=True, type=reference,
                        metavar="NAME=DIR:SPLIT", help="a reference MR set (repeat)")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--metric", choices=sorted(METRICS), default="swd")
    parser.add_argument("--json", help="also write every value as JSON")
    args = parser.parse_args(argv)
    us = cache.load_prepared(args.data, "test", modality="us")[0]
    refs = {name: cache.load_prepared(folder, split, modality="mr")[0]
            for name, folder, split in args.ref}
    values = {}
    fmt = ".1f" if args.metric == "swd" else ".3f"
    for model in args.model:
        mr = us if model == "identity" else synthesize_slices(model, us)
        for name, real in refs.items():
            v = METRICS[args.metric](mr, real, args.seeds)
            values[f"{model} | {name}"] = v
            print(f"{model} | {name}: {args.metric} seed 0 {v[0]:{fmt}}, mean {np.mean(v):{fmt}}"
                  f" ± {np.std(v, ddof=1):{fmt}} (range {min(v):{fmt}}-{max(v):{fmt}}) over "
                  f"{args.seeds} seeds", flush=True)
    for model in args.model[1:]:
        for name in refs:
            d = np.subtract(values[f"{model} | {name}"], values[f"{args.model[0]} | {name}"])
            print(f"{model} - {args.model[0]} | {name}: " + " / ".join(f"{x:+{fmt}}" for x in d)
                  + f" (mean {d.mean():+{fmt}} ± {d.std(ddof=1):{fmt}})")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(
            {"data": args.data, "refs": {n: f"{f}:{s}" for n, f, s in args.ref},
             "seeds": args.seeds, args.metric: values,
             "note": "research numbers, not for diagnosis"}, indent=1) + "\n")


if __name__ == "__main__":
    main()
