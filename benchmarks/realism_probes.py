"""Short 64 px probes of the synthesis configuration, scored with the realism test (issue 18).

    python benchmarks/realism_probes.py --work ../runs/probes \
        --data ../runs/preset_v3_data64 --crl ../runs/crl_eval64 \
        [--steps 600] [--probes v2,base32,rec5] [--precision float32]
        [--out docs/realism_probes.json]

``--data``: `usmr prepare recipes/data/preset_v3.yaml` at ``size: 64``; ``--crl``:
`usmr prepare recipes/data/crl_eval.yaml` at ``size: 64`` (an MR population no model here is
trained on; non-commercial, run time only). Each probe is `recipes/preset_fetal_hc18_v2.yaml`
with a few `--set` overrides (`PROBES`), trained for the same number of steps in float32 by
default (`--precision mixed_bfloat16` only on a CPU with native bfloat16, AVX512_BF16/AMX: on
an AVX2-only CPU bfloat16 at 64 px measured ~6 s/step against ~0.6 s in float32), from the
same seed, into
``WORK/NAME`` (resumable: `usmr train` resumes a killed run, a finished probe is not rerun),
exported, and scored with `usmr evaluate` (realism test, SWD, diversity; identity and real-MR
rows) against three MR sets: the data's test split (an MR subject of a training source), its
held-out source (the MIAL fetus) and the CRL atlas, plus the US brightness carry-over of the
test outputs (`usmr_tf.metrics.carryover`). Prints one table, writes the JSON.
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
}
SETS = ("test", "heldout", "crl")


def run(cmd, log):
    with open(log, "a") as f:
        subprocess.run(cmd, check=True, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)


def train_probe(name, work, data, steps, precision="float32"):
    out = work / name
    if (out / "final.weights.h5").exists():
        return out
    epochs = max(1, steps // 50)
    run([USMR, "train", "--recipe", "recipes/preset_fetal_hc18_v2.yaml", "--out", str(out),
         "--set", f"data.cache_dir={data}", "--set", "data.image_size=64",
         "--set", f"training.epochs={epochs}", "--set", "training.steps_per_epoch=50",
         "--set", f"training.mixed_precision={precision}", "--set", "logging.validate_every=0",
         "--set", "logging.image_every=0", *[a for s in PROBES[name] for a in ("--set", s)]],
        work / f"{name}.log")
    return out


def score(name, run_dir, work, data, crl, real_mr):
    models = work / "models"
    model = models / f"probe_{name}"
    if not model.exists():
        run([USMR, "export", "--checkpoint", str(run_dir / "final.weights.h5"),
             "--name", f"probe_{name}", "--out", str(models)], work / f"{name}.log")
    result = {}
    for which in SETS:
        path = work / f"{name}_{which}.json"
        if not path.exists():
            mr = ["--mr", str(crl), "--mr-split", "train", "--mr-reference", str(real_mr)] \
                if which == "crl" else ["--mr", str(data), "--mr-split", which]
            run([USMR, "evaluate", "--model", str(model), "--us", str(data), "--split", "test",
                 *mr, "--no-deformation", "--max-images", "0", "--quiet", "--json", str(path)],
                work / f"{name}.log")
        result[which] = json.loads(path.read_text())
    return result


def carryover_of(model_dir, data):
    """`usmr_tf.metrics.carryover` of the probe's export on the data's test US."""
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from usmr_tf.export.runtimes import SavedModelRunner
    from usmr_tf.export.synthesis import predict_batched
    from usmr_tf.metrics.carryover import carryover

    us = np.load(data / "us" / "test.npy")
    synth = predict_batched(SavedModelRunner(model_dir), us)
    return carryover(us, synth, erode=5)  # 5 px at 64 px = the 10 px used at 128 px


def rows_of(result):
    """{row: {metric: value}} of one evaluate JSON (model, identity, real MR)."""
    return {"model": result["metrics"], **(result.get("references") or {})}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--crl", required=True)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--probes", default="v2,base32,rec5")
    parser.add_argument("--out", default=str(ROOT / "docs/realism_probes.json"))
    parser.add_argument("--precision", default="float32",
                        help="training.mixed_precision of every probe (mixed_bfloat16 where "
                             "the CPU has it natively: ~1.5x faster)")
    args = parser.parse_args(argv)
    work = pathlib.Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    data, crl = pathlib.Path(args.data).resolve(), pathlib.Path(args.crl).resolve()
    real_mr = work / "train_mr.npy"  # real MR of the training sources: CRL's real-MR row
    if not real_mr.exists():
        import numpy as np

        sys.path.insert(0, str(ROOT))
        from usmr_tf.data import cache

        np.save(real_mr, cache.load_prepared(data, "train", modality="mr")[0])
    table = {}
    for name in args.probes.split(","):
        run_dir = train_probe(name, work, data, args.steps, args.precision)
        table[name] = {which: rows_of(r) for which, r in
                       score(name, run_dir, work, data, crl, real_mr).items()}
        line = "  ".join(
            f"{which}: realism {table[name][which]['model'].get('realism', float('nan')):.3f} "
            f"swd {table[name][which]['model']['swd']:.1f}" for which in SETS)
        table[name]["carryover"] = carryover_of(work / "models" / f"probe_{name}", data)
        line += f"  carry-over corr {table[name]['carryover']['corr']:.3f}"
        print(f"{name:8s} {line}", flush=True)
    summary = {"steps": args.steps, "image_size": 64, "precision": args.precision,
               "data": str(data), "crl": str(crl),
               "probes": {n: PROBES[n] for n in table}, "results": table,
               "note": "research measurements; images are research images, not for diagnosis"}
    pathlib.Path(args.out).write_text(json.dumps(summary, indent=1, default=float) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
