"""A prepared folder whose training MR is another mix of volumes (issue 18's composition tests).

    .venv/bin/python benchmarks/mr_mix.py BASE OUT [--drop REGEX] [--add DIR[=REGEX] ...]
        [--note TEXT] [--score DATA]

Copies the prepared folder BASE (`usmr prepare`) to OUT with its `mr/train` slices changed
(`usmr_tf.data.cache.remix`): those whose subject (e.g. spina_bifida/22) or source file name
(e.g. ref-space-brain.nii.gz) matches `--drop` (re.search) left out, then the training slices
of each `--add` folder appended (`=REGEX`: only those whose subject or source file name
matches). A pattern that matches nothing is refused. US, MR test and held-out splits stay as
they are, so a probe trained on OUT (`benchmarks/realism_probes.py --train-data OUT --tag T`)
is scored exactly like one trained on BASE. `--score DATA` prints the SWD
(`usmr_tf.metrics.swd`, seed 0) of OUT's training MR itself to DATA's test and held-out MR:
how far the MR a probe learns from is from the MR it is scored on (the real-MR reference of
that mix). For diagnostics only: a folder made with the CRL atlas (non-commercial) stays at
run time, never committed or shipped, and so does anything trained on it. Research images
only, not for diagnosis.
"""

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from usmr_tf.data import cache  # noqa: E402
from usmr_tf.errors import DataError  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="a prepared folder")
    parser.add_argument("out", help="the new folder (replaced if it is a prepared folder)")
    parser.add_argument("--drop",
                        help="leave out training MR whose subject or source file name matches")
    parser.add_argument("--add", action="append", default=[], metavar="DIR[=REGEX]",
                        help="append another prepared folder's training MR (repeatable)")
    parser.add_argument("--note", default="", help="appended to the manifest's note")
    parser.add_argument("--score", metavar="DATA",
                        help="print the SWD of OUT's training MR to DATA's test / held-out MR")
    args = parser.parse_args(argv)
    add = [tuple(a.split("=", 1)) if "=" in a else a for a in args.add]
    try:
        out = cache.remix(args.base, args.out, drop=args.drop, add=add, note=args.note)
    except DataError as exc:
        sys.exit(f"mr_mix: {exc}")
    manifest = cache.read_manifest(out)
    changes = [f"{manifest['remix']['dropped']} dropped"] + [
        f"{a['slices']} from {a['folder']}" for a in manifest["remix"]["add"]]
    print(f"{out}: mr/train {manifest['counts']['mr']['train']} slices ({', '.join(changes)})")
    if args.score:
        from usmr_tf.metrics import swd

        train = cache.load_prepared(out, "train", modality="mr")[0]
        for split in ("test", "heldout"):
            try:
                real = cache.load_prepared(args.score, split, modality="mr")[0]
            except DataError as exc:
                print(f"  {split}: {exc}")
                continue
            print(f"  SWD of the training MR to {args.score} mr/{split} ({len(real)} slices): "
                  f"{swd.swd(train, real, seed=0)['mean']:.1f}")


if __name__ == "__main__":
    main()
