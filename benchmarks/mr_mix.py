"""A prepared folder whose training (or held-out) MR is another mix (issue 18's MR tests).

    .venv/bin/python benchmarks/mr_mix.py BASE OUT [--split SPLIT] [--drop REGEX]
        [--add DIR[:SPLIT][=REGEX] ...] [--drop-detached [--figure PNG]] [--note TEXT]
        [--score DATA]

Copies the prepared folder BASE (`usmr prepare`) to OUT with its `mr/train` slices changed
(`usmr_tf.data.cache.remix`; `--split heldout` or `test` changes that split instead): those
whose subject (e.g. spina_bifida/22) or source file name (e.g. ref-space-brain.nii.gz) matches
`--drop` (re.search) left out, then the same split's slices of each `--add` folder appended
(`:SPLIT`: from that split of it, e.g. `DIR:heldout` for a held-out source's slices; `=REGEX`:
only those whose subject or source file name matches). A pattern that matches nothing is
refused. `--drop-detached` then sets the parts of each slice of the split that are detached from
its head to background (`usmr_tf.data.volume.drop_detached_parts`; e.g. the bar of extra-cranial
tissue above the MIAL fetus's head: `--split heldout --drop-detached`). The other splits stay as
they are, so a probe trained on OUT (`benchmarks/realism_probes.py --train-data OUT --tag T`) is
scored exactly like one trained on BASE; with `--split heldout` OUT is a scoring folder with
another left-out MR. `--score DATA` prints the SWD (`usmr_tf.metrics.swd`, seed 0) of OUT's
training MR itself to DATA's test and held-out MR: how far the MR a probe learns from is from
the MR it is scored on (the real-MR reference of that mix). For diagnostics only: a folder made
with the CRL atlas (non-commercial) stays at run time, never committed or shipped, and so does
anything trained on it. Research images only, not for diagnosis.
"""

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from usmr_tf.data import cache  # noqa: E402
from usmr_tf.errors import DataError  # noqa: E402


def add_entry(text, split):
    """`DIR[:SPLIT][=REGEX]` -> (DIR, REGEX or None, SPLIT or `split`) for `cache.remix`."""
    folder, _, pattern = text.partition("=")
    folder, split = cache.split_address(folder, split)
    return folder, pattern or None, split


def figure(before, after, path, n=8):
    """`n` slices of the changed split before and after, and what was set to background (red)."""
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picks = np.linspace(0, len(after) - 1, min(n, len(after))).astype(int)
    fig, axes = plt.subplots(2, len(picks), figsize=(1.8 * len(picks), 4.0), squeeze=False)
    for col, i in enumerate(picks):
        for row, (name, image) in enumerate([("before", before[i]), ("after", after[i])]):
            ax = axes[row, col]
            ax.imshow(image[..., 0], cmap="gray", vmin=-1, vmax=1)
            if row == 0:
                ax.contour(before[i, ..., 0] != after[i, ..., 0], levels=[0.5], colors="r",
                           linewidths=0.6)
            ax.set_axis_off()
            if col == 0:
                ax.set_title(name, fontsize=7, loc="left")
    fig.suptitle("MR slices before / after (red: set to background) - research images, "
                 "not for diagnosis", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=60)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="a prepared folder")
    parser.add_argument("out", help="the new folder (replaced if it is a prepared folder)")
    parser.add_argument("--split", default="train", choices=cache.SPLITS,
                        help="the MR split to change (default train)")
    parser.add_argument("--drop",
                        help="leave out MR of the split whose subject or source file name "
                             "matches")
    parser.add_argument("--add", action="append", default=[], metavar="DIR[:SPLIT][=REGEX]",
                        help="append another prepared folder's MR of the same split (or of "
                             "SPLIT) (repeatable; DIR must not hold '=')")
    parser.add_argument("--drop-detached", action="store_true",
                        help="set the parts of each slice of the split that are detached from "
                             "its head to background (a loose brain mask's scraps; it would "
                             "also remove detached anatomy: for the MIAL held-out slices)")
    parser.add_argument("--note", default="", help="appended to the manifest's note")
    parser.add_argument("--figure", metavar="PNG",
                        help="with --drop-detached: draw slices of the split before and after")
    parser.add_argument("--score", metavar="DATA",
                        help="print the SWD of OUT's training MR to DATA's test / held-out MR")
    args = parser.parse_args(argv)
    if args.figure and not (args.drop_detached and not args.drop and not args.add):
        parser.error("--figure goes with --drop-detached alone (the same slices before and "
                     "after)")
    add = [add_entry(a, args.split) for a in args.add]
    try:
        out = cache.remix(args.base, args.out, split=args.split, drop=args.drop, add=add,
                          drop_detached=args.drop_detached, note=args.note)
    except DataError as exc:
        sys.exit(f"mr_mix: {exc}")
    manifest = cache.read_manifest(out)
    changes = [f"{manifest['remix']['dropped']} dropped"] + [
        f"{a['slices']} from {a['folder']}" + (f" {a['split']}" if a["split"] != args.split
                                                else "") for a in manifest["remix"]["add"]]
    detached = manifest["remix"]["drop_detached"]
    if detached:
        changes.append(f"detached parts dropped from {detached['slices']} slices, "
                       f"{100 * detached['mean_fraction']:.1f} % of the foreground on average")
    print(f"{out}: mr/{args.split} {manifest['counts']['mr'][args.split]} slices "
          f"({', '.join(changes)})")
    if args.figure:
        figure(cache.load_prepared(args.base, args.split, modality="mr")[0],
               cache.load_prepared(out, args.split, modality="mr")[0], args.figure)
        print(f"wrote {args.figure}")
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
