"""Data pipeline throughput: NIfTI/PNG -> slice cache, and tf.data batches.

    python benchmarks/bench_data.py [--data ../shared/data] [--batches 300]

Prints prepared slices/s for `usmr prepare` (every shared MR volume + the HC18 images,
recipes/data/hc18_all_mr.yaml) and batches/s of `unpaired_dataset` at 128x128, batch 8,
with and without augmentation. Without the shared data it uses synthetic volumes.
The prepared files go to a temporary folder that is deleted afterwards.
"""

import argparse
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
import results_io  # noqa: E402

from usmr_tf.data import cache, testing  # noqa: E402
from usmr_tf.data.prepare import load_config, prepare_dataset  # noqa: E402


def synthetic_config(root, n_volumes=12):
    for i in range(n_volumes):
        testing.write_nifti(root / "mr" / f"s{i}.nii.gz",
                            testing.head_volume((135, 189, 155), seed=i) * 10,
                            testing.oblique_affine((0.8, 0.8, 0.8)))
    return {"data_root": str(root), "size": 128,
            "mr": [{"name": "synthetic", "root": "mr", "subject": r"(s\d+)"}]}


def bench_prepare(config, data_root, out):
    start = time.perf_counter()
    _, manifest, _ = prepare_dataset(config, out, data_root=data_root, force=True)
    seconds = time.perf_counter() - start
    counts = {m: c["train"] + c["test"] for m, c in manifest["counts"].items()}
    total = sum(counts.values())
    detail = ", ".join(f"{m}: {n}" for m, n in sorted(counts.items()))
    print(f"prepare: {total} slices ({detail}) in {seconds:.1f} s -> {total / seconds:.0f} "
          "slices/s (NIfTI/PNG -> cache, including reading, writing and the split)")
    return manifest


def bench_batches(us, mr, batches, batch_size, augment):
    from usmr_tf.data.pipeline import unpaired_dataset

    ds = unpaired_dataset(us, mr, batch_size, seed=0, augment=augment)
    iterator = iter(ds)
    for _ in range(10):  # warm-up (tracing, prefetch)
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    rate = batches / (time.perf_counter() - start)
    print(f"tf.data: {rate:.0f} batches/s ({rate * batch_size:.0f} pairs/s) at "
          f"{us.shape[1]}x{us.shape[2]}, batch {batch_size}, augment={augment}")
    return rate


def bench_teardown(us, mr, batch_size, seconds=12.0):
    """Seconds to tear down a `usmr train` input iterator after `seconds` of use (the
    trainer's `_dataset`, autotune off) vs the same pipeline with tf.data autotune on."""
    import tensorflow as tf

    from usmr_tf.training.trainer import Split, _dataset

    out = {}
    for label in ("autotune on", "usmr train (autotune off)"):
        ds = _dataset(Split(us, mr), batch_size, 0, True)
        if label == "autotune on":
            options = tf.data.Options()
            options.autotune.enabled = True
            ds = ds.with_options(options)
        iterator = iter(ds)
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            next(iterator)
            time.sleep(0.05)  # a consumer slower than the pipeline, like training
        start = time.perf_counter()
        del iterator
        out[label] = time.perf_counter() - start
        print(f"iterator teardown after {seconds:.0f} s, {label}: {out[label]:.2f} s")
    return out


def training_consumption():
    """Batches/s the training steps consume, from the train section of results.json."""
    rows = results_io.load().get("train", {}).get("models", [])
    return {f"{r['model']}/{r['precision']}": 1.0 / r["step_s"] for r in rows}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("USMR_SHARED_DATA",
                                                         str(REPO.parent / "shared" / "data")))
    parser.add_argument("--config", default=str(REPO / "recipes" / "data" / "hc18_all_mr.yaml"))
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="usmr-bench-") as tmp:
        tmp = pathlib.Path(tmp)
        if (pathlib.Path(args.data) / "SOURCES.md").exists():
            print(f"data: {args.data} ({pathlib.Path(args.config).name})")
            config, data_root = load_config(args.config), args.data
        else:
            print(f"data: {args.data} absent, using 12 synthetic 135x189x155 volumes")
            config, data_root = synthetic_config(tmp / "synthetic"), None
        bench_prepare(config, data_root, tmp / "prepared")
        mr, _ = cache.load_prepared(tmp / "prepared", "train", modality="mr")
        us_dir = tmp / "prepared" / "us"
        us = cache.load_prepared(us_dir, "train")[0] if us_dir.exists() else mr
        rates = {str(a): bench_batches(us, mr, args.batches, args.batch_size, a)
                 for a in (False, True)}
        teardown = bench_teardown(us[:512], mr[:512], args.batch_size)
    slowest = min(rates.values())
    consume = training_consumption()
    if consume:
        fastest_name = max(consume, key=consume.get)
        ratio = slowest / consume[fastest_name]
        print(f"input {slowest:.0f} batches/s vs the fastest training ({fastest_name}) "
              f"{consume[fastest_name]:.2f} batches/s: x{ratio:.0f} (goal >= x10)")
    else:
        ratio = None
        print("no train results in benchmarks/results.json yet: run bench_train.py for the ratio")
    results_io.update("data", {
        "command": "benchmarks/bench_data.py " + " ".join(argv or sys.argv[1:]),
        "batches_s": rates, "teardown_s": teardown, "training_batches_s": consume,
        "input_over_fastest_training": ratio, "loadavg_1m": round(os.getloadavg()[0], 2)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
