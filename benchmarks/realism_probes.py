"""Short 64 px probes of the synthesis configuration, scored with the realism test (issue 18).

    python benchmarks/realism_probes.py --work ../runs/probes \
        --data ../runs/preset_v3_data64 --crl ../runs/crl_eval64 \
        [--steps 600] [--probes v2,base32,rec5] [--precision float32] [--seeds 0,1,2]
        [--deformation [--deformation-equalise]] [--train-data DIR --tag NAME]
        [--image-size 64]
        [--out docs/realism_probes.json]

``--data``: `usmr prepare recipes/data/preset_v3.yaml` at ``size: 64``; ``--crl``:
`usmr prepare recipes/data/crl_eval.yaml` at ``size: 64`` (an MR population no model here is
trained on; non-commercial, run time only). Each probe is `recipes/preset_fetal_hc18_v2.yaml`
with a few `--set` overrides (`PROBES`), trained for the same number of steps in float32 by
default (`--precision mixed_bfloat16` only on a CPU with native bfloat16, AVX512_BF16/AMX: on
an AVX2-only CPU bfloat16 at 64 px measured ~6 s/step against ~0.6 s in float32), from the
same seed, into ``WORK/NAME`` (resumable: `usmr train` resumes a killed run, a finished probe
is not rerun), exported, and scored with `usmr evaluate` (realism test, SWD, diversity;
identity and real-MR rows) against three MR sets: the data's test split (an MR subject of a
training source), its held-out source (the MIAL fetus) and the CRL atlas, plus the US
brightness carry-over of the test outputs (`usmr_tf.metrics.carryover`) and their outline check
(`usmr_tf.metrics.outline`: does each MR keep its US's head).

``--deformation`` adds the registration-based deformation score against the test split's MR
(paper §3.2; ~1.5 min a probe); with ``--deformation-equalise`` that score is computed on
rank-equalised images (`usmr evaluate --deformation-equalise`: blind to contrast), kept in
``NAME_test_deformation_equalised.json`` beside the published one. ``--seeds 0,1,2`` trains
every probe with each seed (seed 0 keeps the documented names, seed N trains into
``WORK/NAME_sN``) and prints each probe's mean +- sd over them. ``--train-data DIR --tag T``
trains on another prepared folder (e.g. data v3 planar at 64 px) into ``WORK/NAME_T[_sN]`` and
still scores on ``--data``. ``--image-size 128`` trains and scores at 128 px (the preset's
size; every folder prepared at it, checked; ~2x the time of a 64 px probe). Prints one line a
run and the table of spreads, writes the JSON.
A measurement, not a test. Research images only, not for diagnosis.
"""

import argparse
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
USMR = str(pathlib.Path(sys.executable).with_name("usmr"))

# name -> --set overrides on top of the preset v2 recipe (beyond-paper knobs stay flags).
PROBES = {
    "v2": [],                                  # the shipped configuration
    "base32": ["model.base_filters=32"],       # generator / discriminator capacity x2
    "rec5": ["model.lambda_rec=5.0"],          # half the reconstruction weight
    "nce": ["model.nce_weight=0.5"],           # PatchNCE correspondence at a low weight
    "no_da": ["model.diff_augment=false"],     # the paper's model without DiffAugment
    "ema": ["model.ema_decay=0.999"],          # inference from an EMA of the generator
    "no_da_ema": ["model.diff_augment=false", "model.ema_decay=0.999"],
    "skip1": ["model.mr_skip_drop=1"],         # decoder-C without the full-resolution skip
    "skip2": ["model.mr_skip_drop=2"],         # ... and without the next one
    "proj1": ["model.lambda_proj=1.0"],        # L_proj (Eq. 6) at 1, L_lat (Eq. 2) kept at 10
    "proj0": ["model.lambda_proj=0.0"],        # no L_proj: is it what keeps the US's ranking?
    # content kept by PatchNCE feature correspondence instead of L_proj's pixel inversion
    "proj0_nce": ["model.lambda_proj=0.0", "model.nce_weight=1.0"],
    "pool4": ["model.proj_pool=4"],            # L_proj on 4 x 4 cell means: the US's layout
    "pool8": ["model.proj_pool=8"],            # ... on 8 x 8 cells (at 64 px: an 8 x 8 image)
    "disc2": ["model.disc_scales=2"],          # image discriminators also on the 2x-pooled input
    # the head held to its US's intracranial region, at the paper's weight of its pixel terms
    "outline": ["model.lambda_outline=10.0"],
}
SETS = ("test", "heldout", "crl")


def run(cmd, log):
    with open(log, "a") as f:
        subprocess.run(cmd, check=True, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)


def run_name(name, seed, tag=""):
    """Folder / export name of a probe: seed 0 and no tag keep the documented names."""
    return name + (f"_{tag}" if tag else "") + (f"_s{seed}" if seed else "")


def train_probe(name, work, data, steps, precision="float32", seed=0, tag="", image_size=64):
    out = work / run_name(name, seed, tag)
    if (out / "final.weights.h5").exists():
        return out
    epochs = max(1, steps // 50)
    run([USMR, "train", "--recipe", "recipes/preset_fetal_hc18_v2.yaml", "--out", str(out),
         "--set", f"data.cache_dir={data}", "--set", f"data.image_size={image_size}",
         "--set", f"training.epochs={epochs}", "--set", "training.steps_per_epoch=50",
         "--set", f"training.mixed_precision={precision}", "--set", "logging.validate_every=0",
         "--set", "logging.image_every=0", "--set", f"training.seed={seed}",
         *[a for s in PROBES[name] for a in ("--set", s)]],
        work / f"{out.name}.log")
    return out


def score(name, run_dir, work, data, crl, real_mr, deformation=False, equalise=False):
    models = work / "models"
    model = models / f"probe_{name}"
    if not model.exists():
        run([USMR, "export", "--checkpoint", str(run_dir / "final.weights.h5"),
             "--name", f"probe_{name}", "--out", str(models)], work / f"{name}.log")
    result = {}
    for which in SETS:
        deform = deformation and which == "test"
        kind = ("_deformation" + ("_equalised" if equalise else "")) if deform else ""
        path = work / f"{name}_{which}{kind}.json"
        if not path.exists():
            mr = ["--mr", str(crl), "--mr-split", "train", "--mr-reference", str(real_mr)] \
                if which == "crl" else ["--mr", str(data), "--mr-split", which]
            # deformation (FFD registration) only against the test split's MR, when asked
            if not deform:
                deform_args = ["--no-deformation"]
            else:
                deform_args = ["--deformation-equalise"] if equalise else []
            run([USMR, "evaluate", "--model", str(model), "--us", str(data), "--split", "test",
                 *mr, *deform_args, "--max-images", "0", "--realism-repeats", "1", "--quiet",
                 "--json", str(path)],
                work / f"{name}.log")
        result[which] = json.loads(path.read_text())
    return result


def carryover_of(model_dir, data):
    """`usmr_tf.metrics.carryover` of the probe's export on the data's test US, with the mean
    outline check (`usmr_tf.metrics.outline`) of the same outputs as `outline`."""
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from usmr_tf.export.synthesis import synthesize_slices
    from usmr_tf.metrics.carryover import carryover
    from usmr_tf.metrics.outline import outline_scores

    us = np.load(data / "us" / "test.npy")
    synth = synthesize_slices(model_dir, us)
    result = carryover(us, synth, erode=5)  # 5 px at 64 px = the 10 px used at 128 px
    result["outline"] = float(np.nanmean(outline_scores(us, synth)))
    return result


def rows_of(result):
    """{row: {metric: value}} of one evaluate JSON (model, identity, real MR)."""
    return {"model": result["metrics"], **(result.get("references") or {})}


def measures(row, carry=None):
    """The numbers a probe is ranked on, flat: SET_realism, SET_swd, test_deformation, carry,
    outline."""
    out = {}
    for which in SETS:
        m = row[which]["model"]
        out[f"{which}_realism"] = m.get("realism", float("nan"))
        out[f"{which}_swd"] = m["swd"]
    out["test_deformation"] = row["test"]["model"].get("deformation", float("nan"))
    out["diversity"] = row["test"]["model"].get("diversity", float("nan"))
    if carry is not None:
        out["carryover_corr"] = carry["corr"]
    outline = (carry or {}).get("outline", row["test"]["model"].get("outline"))
    if outline is not None:  # the real-MR row has none: its MR belongs to no US
        out["test_outline"] = outline
    return out


def spread(flat_by_seed):
    """{measure: [mean, sd, n]} over seeds (sd with n - 1; 0 for one seed)."""
    import numpy as np

    keys = flat_by_seed[0].keys()
    out = {}
    for k in keys:
        v = np.array([f[k] for f in flat_by_seed], float)
        out[k] = [float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, len(v)]
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--crl", required=True)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--probes", default="v2,base32,rec5")
    parser.add_argument("--out", default=str(ROOT / "docs/realism_probes.json"))
    parser.add_argument("--seeds", default="0",
                        help="training.seed of every probe, a comma list (default 0: the "
                             "documented probes); several give each probe's mean +- sd")
    parser.add_argument("--train-data", help="prepared folder to train on (default: --data)")
    parser.add_argument("--tag", default="", help="name suffix of runs trained on --train-data")
    parser.add_argument("--deformation", action="store_true",
                        help="also the deformation score against the test split's MR")
    parser.add_argument("--deformation-equalise", action="store_true",
                        help="with --deformation: on rank-equalised images (contrast-blind)")
    parser.add_argument("--image-size", type=int, default=64,
                        help="data.image_size of every probe; --data, --train-data and --crl "
                             "must be prepared at this size (default 64)")
    parser.add_argument("--precision", default="float32",
                        help="training.mixed_precision of every probe (mixed_bfloat16 where "
                             "the CPU has it natively: ~1.5x faster)")
    args = parser.parse_args(argv)
    if args.deformation_equalise and not args.deformation:
        parser.error("--deformation-equalise goes with --deformation")
    if bool(args.train_data) != bool(args.tag):
        parser.error("--train-data and --tag go together")
    seeds = [int(x) for x in args.seeds.split(",")]
    probes = args.probes.split(",")
    unknown = [p for p in probes if p not in PROBES]
    if unknown:
        parser.error(f"unknown probe(s) {unknown}; known: {sorted(PROBES)}")
    work = pathlib.Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    data, crl = pathlib.Path(args.data).resolve(), pathlib.Path(args.crl).resolve()
    train_data = pathlib.Path(args.train_data).resolve() if args.train_data else data
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from usmr_tf.data import cache

    for folder in dict.fromkeys([data, train_data, crl]):
        manifest = cache.read_manifest(folder)
        if manifest is None:
            parser.error(f"{folder} is not a prepared folder (`usmr prepare`)")
        size = manifest["params"]["size"]
        if size != args.image_size:
            parser.error(f"{folder} holds {size} px images, not --image-size {args.image_size}")
    real_mr = work / "train_mr.npy"  # real MR of the training sources: CRL's real-MR row
    if not real_mr.exists():
        np.save(real_mr, cache.load_prepared(data, "train", modality="mr")[0])
    table, flat = {}, {}
    for seed in seeds:
        for probe in probes:
            run_dir = train_probe(probe, work, train_data, args.steps, args.precision, seed,
                                  args.tag, args.image_size)
            name = run_name(probe, seed, args.tag)
            table[name] = {which: rows_of(r) for which, r in
                           score(name, run_dir, work, data, crl, real_mr,
                                 args.deformation, args.deformation_equalise).items()}
            table[name]["carryover"] = carryover_of(work / "models" / f"probe_{name}", data)
            flat[name] = measures(table[name], table[name]["carryover"])
            print(f"{name:12s} " + "  ".join(f"{k} {v:.3f}" for k, v in flat[name].items()),
                  flush=True)
    any_name = next(iter(table))
    references = {ref: measures({w: {"model": table[any_name][w][ref]} for w in SETS})
                  for ref in table[any_name]["test"] if ref != "model"}
    spreads = {run_name(p, 0, args.tag) + (f" x{len(seeds)} seeds" if len(seeds) > 1 else ""):
               spread([flat[run_name(p, s, args.tag)] for s in seeds]) for p in probes}
    cols = list(next(iter(spreads.values())))
    print("\n" + " | ".join(["probe (mean +- sd over seeds)"] + cols))
    for ref, row in references.items():
        print(" | ".join([ref] + [f"{row.get(c, float('nan')):.3f}" for c in cols]))
    for name, row in spreads.items():
        print(" | ".join([name] + [f"{m:.3f} +- {sd:.3f}" for m, sd, _ in row.values()]))
    summary = {"steps": args.steps, "image_size": args.image_size, "precision": args.precision,
               "deformation_equalise": args.deformation_equalise,
               "seeds": seeds, "train_data": str(train_data), "data": str(data),
               "crl": str(crl), "probes": {p: PROBES[p] for p in probes}, "results": table,
               "measures": flat, "references": references, "spread": spreads,
               "note": "research measurements; images are research images, not for diagnosis"}
    pathlib.Path(args.out).write_text(json.dumps(summary, indent=1, default=float) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
