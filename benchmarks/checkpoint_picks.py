"""Would validating on MR of an unseen subject pick better checkpoints? (issue 18)

    .venv/bin/python benchmarks/checkpoint_picks.py docs/preset_v3_*checkpoints.json \
        [--from-step 1250]

Reads `benchmarks/checkpoint_scores.py` JSON files (every checkpoint of a run scored against the
test split's MR and the left-out MR source) and, per run, over the checkpoints from
`--from-step` on (default 1250: the plateau; only the long run's seed 1, validated on tail US,
picked earlier, at step 1000: `--from-step 0` to include every checkpoint), prints:
- the Spearman rank correlation with the left-out source's SWD of the run's validation SWD
  (validation MR = slices of the volumes it trains on) and of the test split's SWD (MR of a
  volume it never trained on: what a validation split of unseen subjects would see);
- the left-out SWD of the checkpoint each curve would pick (its lowest; the training rule also
  weighs the realism test, docs/training.md) and the lowest of all (what a perfect rule would
  pick).

The test split stands in for an unseen validation subject here; picking on it for a shipped
model would leak it, so this is a diagnostic of rules, not a rule. Research numbers, not for
diagnosis.
"""

import argparse
import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from checkpoint_scores import spearman  # noqa: E402


def picks(rows):
    """{"rho_validation", "rho_unseen", "by_validation", "by_unseen", "best"} of one run's rows."""
    val, unseen, held = (np.array([r[k] for r in rows])
                         for k in ("validation_swd", "test_swd", "heldout_swd"))
    return {"n": len(rows),
            "rho_validation": spearman(val, held), "rho_unseen": spearman(unseen, held),
            "by_validation": (rows[int(np.argmin(val))]["step"], float(held[np.argmin(val)])),
            "by_unseen": (rows[int(np.argmin(unseen))]["step"], float(held[np.argmin(unseen)])),
            "best": (rows[int(np.argmin(held))]["step"], float(held.min()))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scores", nargs="+", type=pathlib.Path,
                        help="checkpoint_scores.py --json files")
    parser.add_argument("--from-step", type=int, default=1250,
                        help="only checkpoints from this step on (default 1250)")
    args = parser.parse_args(argv)
    print(f"checkpoints from step {args.from_step}; SWD to the left-out MR source of the "
          "checkpoint each curve picks (research numbers, not for diagnosis)")
    print(f"{'run':<28} {'n':>2} {'rho val':>8} {'rho unseen':>10} "
          f"{'pick by val':>16} {'pick by unseen':>16} {'best':>16}")
    chosen = {"by_validation": [], "by_unseen": [], "best": []}
    for path in args.scores:
        results = json.loads(path.read_text())
        for run, result in results.items():
            if not isinstance(result, dict) or "checkpoints" not in result:
                continue
            rows = [r for r in result["checkpoints"] if r["step"] >= args.from_step]
            if len(rows) < 3 or "heldout_swd" not in rows[0]:
                continue
            p = picks(rows)
            for key in chosen:
                chosen[key].append(p[key][1])
            print(f"{run:<28} {p['n']:>2} {p['rho_validation']:>+8.2f} {p['rho_unseen']:>+10.2f} "
                  + " ".join(f"{'step %d: %.1f' % p[k]:>16}" for k in chosen))
    if chosen["best"]:
        print(f"mean over {len(chosen['best'])} runs: "
              + ", ".join(f"{k} {np.mean(v):.1f}" for k, v in chosen.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
