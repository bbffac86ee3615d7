"""Inference speed of the exported generator: SavedModel (TF), LiteRT (TFLite) and ONNX Runtime.

For one model at SIZE x SIZE (default: the full model of recipes/ours.yaml, base_filters 32,
depth 4, random weights; or an exported `--model saved_models/NAME`):

- runtimes: SavedModel (TF), LiteRT float32 and dynamic-range quantised (int8 weights),
  ONNX Runtime; with the max |difference| from the SavedModel on a batch of 32 and file size;
- latency, batch 1: median wall time of `--runs` calls after `--warmup` calls;
- throughput, batch 32: images per second over `--runs` calls of a 32-image batch;
- `usmr synthesize` on a synthetic 160-slice NIfTI volume (slices along the model's axis):
  wall time of the whole command (load model, read, slice, synthesize, reassemble, write),
  SavedModel runtime, batch 32; in-process and as a fresh `usmr` process (with the imports);
- the floor: the generator's inference FLOPs per slice, counted from its layers
  (`usmr_tf.models.flops`, convolutions + attention matmuls), the GFLOP/s the volume call
  reached and the time the volume would take at the float32 / bfloat16 roofs measured by
  `bench_train.py` in the same `make bench` (results.json), so a goal below the floor shows.

All runtimes run on the CPU with their default thread settings. Converters that fail are
reported as such and the other runtimes still run.

Usage:
    .venv/bin/python benchmarks/bench_infer.py [--size 128] [--base-filters 32] [--depth 4]
        [--model saved_models/NAME] [--runs 20] [--warmup 3] [--slices 160]
"""

import argparse
import os
import pathlib
import shutil
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results_io  # noqa: E402

from usmr_tf.errors import UsmrError  # noqa: E402
from usmr_tf.export import convert, export_savedmodel  # noqa: E402
from usmr_tf.export.runtimes import (  # noqa: E402
    OnnxRunner,
    SavedModelRunner,
    TFLiteRunner,
    random_us_batch,
)


def time_calls(runner, x, runs, warmup):
    for _ in range(warmup):
        runner(x)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        runner(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def head_volume_file(path, size, n_slices, axis):
    """A synthetic head NIfTI at `path`: `size`^2 in-plane, `n_slices` along `axis`."""
    from usmr_tf.data.testing import head_volume, oblique_affine, write_nifti

    shape = [size, size, size]
    shape[axis] = n_slices
    return write_nifti(path, head_volume(tuple(shape), seed=0),
                       oblique_affine(spacing=(1.0, 1.0, 1.0)))


def synthesize_volume_seconds(model_dir, size, n_slices, axis, work):
    """Wall time of `usmr synthesize` on a head-like volume with `n_slices` along `axis`."""
    from usmr_tf.cli.main import main

    path = head_volume_file(work / "us.nii.gz", size, n_slices, axis)
    from usmr_tf.data import volume_to_slices

    n_synthesized = len(volume_to_slices(path, axis=axis, size=size, min_foreground=0.0)[0])
    out = work / "mr.nii.gz"
    start = time.perf_counter()
    rc = main(["synthesize", "--model", str(model_dir), str(path), str(out), "--quiet",
               "--batch-size", "32"])
    seconds = time.perf_counter() - start
    if rc != 0:
        raise RuntimeError(f"usmr synthesize exited {rc}")
    return seconds, n_synthesized


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="exported saved_models/NAME (optional)")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--base-filters", type=int, default=32)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--slices", type=int, default=160)
    parser.add_argument("--no-write", action="store_true", help="do not update results.json")
    args = parser.parse_args(argv)
    args.argv = list(argv or sys.argv[1:])

    work = pathlib.Path(tempfile.mkdtemp(prefix="bench_infer_"))
    try:
        return run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def inference_flops_per_slice(model_dir=None, size=128, base_filters=32, depth=4):
    """Analytic forward FLOPs of one slice through the exported generator's architecture.

    The architecture comes from the export's `usmr.json` (`config.model`) or the arguments;
    the count is that of `usmr_tf.models.flops` (conv, transposed conv, attention matmuls).
    Returns None when the export does not record its model config.
    """
    import tensorflow as tf

    from usmr_tf.models import flops
    from usmr_tf.models.registry import build_model

    config = {"name": "ours", "base_filters": base_filters, "depth": depth}
    if model_dir is not None:
        from usmr_tf.export.metadata import read_metadata

        meta = read_metadata(model_dir)
        if not meta:
            return None
        version = meta["versions"][str(meta["latest_version"])]
        config = dict(version.get("config", {}).get("model") or {})
        if not config:
            return None
    config = dict(config)
    name = config.pop("name", "ours")
    config.pop("diff_augment", None)  # training only
    model = build_model(name, image_size=size, **config)
    generator, holder = model.generator, {}

    def forward(us):
        with flops.record_layer_calls({}) as (calls, depends, keep):
            depends[id(us)] = frozenset()
            keep.append(us)
            generator(us, training=False)
            holder["calls"] = list(calls)
        return tf.constant(0.0)

    tf.function(forward, autograph=False).get_concrete_function(
        tf.TensorSpec([1, size, size, 1], tf.float32))
    return sum(c.forward for c in holder["calls"])


def synthesize_fresh_process_seconds(model_dir, size, n_slices, axis, work):
    """Wall time of `usmr synthesize` as a new process: Python + TF import included."""
    import subprocess

    path = head_volume_file(work / "us_fresh.nii.gz", size, n_slices, axis)
    usmr = pathlib.Path(sys.executable).with_name("usmr")
    cmd = [str(usmr), "synthesize", "--model", str(model_dir), str(path),
           str(work / "mr_fresh.nii.gz"), "--quiet", "--batch-size", "32"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def run(args, work):
    if args.model:
        model_dir = pathlib.Path(args.model)
    else:
        from usmr_tf.export.testing import build_full_model

        model = build_full_model(args.size, args.base_filters, args.depth)
        export_savedmodel(model, work / "saved_models", "bench")
        model_dir = work / "saved_models" / "bench"
        del model
    reference = SavedModelRunner(model_dir)
    size = reference.image_size
    runners = {"SavedModel (TF)": reference}
    sizes = {"SavedModel (TF)": sum(p.stat().st_size for p in reference.path.rglob("*")
                                    if p.is_file())}
    failures = {}
    for label, fmt, runner_cls, options in (
        ("LiteRT float32", "tflite", TFLiteRunner, {}),
        ("LiteRT dyn-range", "tflite", TFLiteRunner, {"quantize": "dynamic"}),
        ("ONNX Runtime", "onnx", OnnxRunner, {}),
    ):
        try:
            path = convert.convert(reference.path, fmt, work / f"{label.split()[-1]}.{fmt}",
                                   **options)
            runners[label] = runner_cls(path)
            sizes[label] = path.stat().st_size
        except (UsmrError, RuntimeError) as exc:
            failures[label] = str(exc).splitlines()[0][:160]

    x1, x32 = random_us_batch(1, size, seed=1), random_us_batch(32, size, seed=2)
    print(f"model {model_dir} v{reference.version}, {size}x{size}, CPU "
          f"({os.cpu_count()} logical cores visible), median of {args.runs} runs")
    print(f"{'runtime':<18} {'latency b=1 (ms)':>17} {'throughput b=32 (img/s)':>24} "
          f"{'max |diff| vs TF':>17} {'size (MB)':>10}")
    rows = []
    for label, runner in runners.items():
        latency = time_calls(runner, x1, args.runs, args.warmup)
        batch_time = time_calls(runner, x32, max(3, args.runs // 4), 1)
        diff = float(np.max(np.abs(runner(x32) - reference(x32))))
        print(f"{label:<18} {latency * 1e3:>17.2f} {32 / batch_time:>24.1f} {diff:>17.2e} "
              f"{sizes[label] / 1e6:>10.2f}")
        rows.append({"runtime": label, "latency_b1_ms": latency * 1e3,
                     "throughput_b32_img_s": 32 / batch_time, "max_abs_diff": diff,
                     "size_mb": sizes[label] / 1e6, "loadavg_1m": round(os.getloadavg()[0], 2)})
    ref_ms = rows[0]["latency_b1_ms"]
    for r in rows:
        r["latency_vs_savedmodel"] = r["latency_b1_ms"] / ref_ms
    volume = random_us_batch(args.slices, size, seed=3)
    vol_times = [time_calls(reference, volume, 1, 1 if i == 0 else 0) for i in range(3)]
    print(f"SavedModel, {args.slices} slices {size}x{size} in one call: {min(vol_times):.2f} s "
          f"model time (best of 3; load {os.getloadavg()[0]:.2f})")
    per_slice = inference_flops_per_slice(model_dir if args.model else None, size,
                                          args.base_filters, args.depth)
    floor = {}
    if per_slice:
        volume_gflop = per_slice * args.slices / 1e9
        roofs = results_io.load().get("train", {}).get("best_roofs", {})
        floor = {"gflop_per_slice": per_slice / 1e9, "volume_gflop": volume_gflop,
                 "volume_gflops_achieved": volume_gflop / min(vol_times),
                 "volume_floor_s": {dt: volume_gflop / r for dt, r in roofs.items()},
                 "roofs_from": "results.json train.best_roofs" if roofs else None}
        print(f"  {per_slice / 1e9:.2f} GFLOP per slice (layers' count), {volume_gflop:.0f} GFLOP "
              f"per volume: {floor['volume_gflops_achieved']:.0f} GFLOP/s reached; at the roofs "
              + ", ".join(f"{dt} {r:.0f} GFLOP/s -> {volume_gflop / r:.2f} s"
                          for dt, r in roofs.items()))
    for label, reason in failures.items():
        print(f"{label:<18} conversion failed: {reason}")
    seconds, n = synthesize_volume_seconds(model_dir, size, args.slices, reference.slice_axis,
                                           work)
    print(f"usmr synthesize, {args.slices}-slice {size}x{size} volume (axis "
          f"{reference.slice_axis}; {n} slices in the head's bounding box synthesized, "
          f"SavedModel, batch 32): {seconds:.2f} s end to end (in-process: excludes the "
          f"Python/TF import of a fresh `usmr` process)")
    fresh = synthesize_fresh_process_seconds(model_dir, size, args.slices,
                                             reference.slice_axis, work)
    print(f"usmr synthesize as a fresh process (imports included): {fresh:.2f} s")
    if not args.no_write:
        results_io.update("infer", {
            "command": "benchmarks/bench_infer.py " + " ".join(args.argv), "size": size,
            "runtimes": rows, "failures": failures, "volume_slices": args.slices,
            "volume_model_s": min(vol_times), "volume_model_times_s": vol_times,
            "synthesize_s": seconds, "synthesize_slices": n,
            "synthesize_fresh_process_s": fresh, "model": str(model_dir) if args.model else
            f"random ours base {args.base_filters} depth {args.depth}", "floor": floor,
            "loadavg_1m": round(os.getloadavg()[0], 2)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
