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
        for augment in (False, True):
            bench_batches(us, mr, args.batches, args.batch_size, augment)
    return 0


if __name__ == "__main__":
    sys.exit(main())
