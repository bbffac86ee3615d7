"""Training step time and achieved GFLOP/s of every model, float32 and mixed_bfloat16, against
float32 and bfloat16 roofs measured in the same run.

For each model, built from its recipe (recipes/NAME.yaml) at SIZE x SIZE, global batch BATCH:

- step time: the minimum over `--repeats` calls of the compiled `train_step` (the graph
  `model.fit` runs) on a fixed batch, after one warm-up call (tracing excluded); the 1-minute
  load average is recorded next to each call (other processes share the cores);
- FLOPs per step: `usmr_tf.models.flops.train_step_flops`, counted analytically per layer call
  (convs, transposed convs, attention matmuls, dense; forward + the G-pass and D-pass
  gradients train_step takes), checked against the profiler's statistics over the ops the
  traced train_step graph actually runs (`graph_flops(live_only=True)`), and beside the old
  `tf.compat.v1.profiler` total over the whole graph, which also counts gradient ops that never
  run (that total gave the former "111-124 % of roof");
- roofs: best GFLOP/s of a 4096^2 matmul and of a 3x3 64->64 conv on [BATCH, SIZE, SIZE, 64],
  in float32 and in bfloat16; a model is compared with the roof of its compute dtype.

Writes the "train" section of benchmarks/results.json.

Usage:
    .venv/bin/python benchmarks/bench_train.py [--models ae gan cyclegan ours cyclegan_resnet9]
        [--precisions float32 mixed_bfloat16] [--size 128] [--batch 8] [--repeats 3]
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results_io  # noqa: E402

from usmr_tf.models import flops as flops_lib  # noqa: E402
from usmr_tf.training import testing, trainer  # noqa: E402
from usmr_tf.training.recipe import load_recipe  # noqa: E402

DTYPES = {"float32": tf.float32, "mixed_bfloat16": tf.bfloat16}


def _best(fn, repeats):
    fn()
    return results_io.timed(fn, repeats)


def roofs(batch, size, repeats=5):
    """{dtype: {"gemm": GFLOP/s, "conv": GFLOP/s, "roof": max}} for float32 and bfloat16."""
    out = {}
    for name, dtype in (("float32", tf.float32), ("bfloat16", tf.bfloat16)):
        a = tf.cast(tf.random.normal([4096, 4096]), dtype)
        mm = tf.function(lambda x, y: tf.matmul(x, y))
        gemm = _best(lambda: mm(a, a).numpy(), repeats)
        x = tf.cast(tf.random.normal([batch, size, size, 64]), dtype)
        w = tf.cast(tf.random.normal([3, 3, 64, 64]), dtype)
        conv = tf.function(lambda a_, b_: tf.nn.conv2d(a_, b_, 1, "SAME"))
        c = _best(lambda: conv(x, w).numpy(), repeats)
        g_gemm = 2 * 4096**3 / gemm["best_s"] / 1e9
        g_conv = 2 * batch * size * size * 64 * 64 * 9 / c["best_s"] / 1e9
        out[name] = {"gemm_gflops": g_gemm, "conv_gflops": g_conv, "roof_gflops": max(g_gemm, g_conv),
                     "loadavg_1m": gemm["loadavg_1m"] + c["loadavg_1m"]}
    return out


def bench_model(name, precision, size, batch, repeats, check_graph):
    recipe = load_recipe(testing.REPO / "recipes" / f"{name}.yaml",
                         [f"data.image_size={size}", f"training.batch_size={batch}",
                          f"training.mixed_precision={precision}"])
    keras.utils.set_random_seed(0)
    model = trainer.create_model(recipe, tf.distribute.get_strategy())
    from usmr_tf.data.phantoms import unpaired_phantoms

    us, mr, _ = unpaired_phantoms(batch, batch, size, seed=0)
    data = (tf.constant(us), tf.constant(mr))
    count = flops_lib.train_step_flops(model, batch)
    result = {"model": name, "precision": precision,
              "params": sum(int(np.prod(v.shape)) for v in model.trainable_variables),
              "flops_step": count.total, "flops_forward": count.forward,
              "flops_g_backward": count.g_backward, "flops_d_backward": count.d_backward}
    step = tf.function(model.train_step)
    t0 = time.perf_counter()
    fn = step.get_concrete_function(data)
    if check_graph:
        live = flops_lib.graph_flops(fn, live_only=True, op_types=flops_lib.WEIGHT_OPS)
        result["profiler_live_flops"] = sum(live.values())
        result["profiler_total_flops_unpruned"] = flops_lib.profiler_total_flops(fn)
    step(data)["loss"].numpy()  # warm-up: trace + first run
    result["first_step_s"] = time.perf_counter() - t0
    timing = results_io.timed(lambda: step(data)["loss"].numpy(), repeats)
    result.update(step_s=timing["best_s"], step_times_s=timing["times_s"],
                  loadavg_1m=timing["loadavg_1m"], images_s=batch / timing["best_s"],
                  gflops=count.total / timing["best_s"] / 1e9)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+",
                        default=["ae", "gan", "cyclegan", "ours", "cyclegan_resnet9"])
    parser.add_argument("--precisions", nargs="+", default=["float32", "mixed_bfloat16"],
                        choices=sorted(DTYPES))
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-graph-check", action="store_true",
                        help="skip the profiler counts (faster)")
    parser.add_argument("--no-write", action="store_true", help="do not update results.json")
    args = parser.parse_args(argv)
    tf.get_logger().setLevel("ERROR")
    print(f"# bench_train: {args.size}x{args.size}, batch {args.batch}, best of {args.repeats} "
          f"steps after a warm-up; TF {tf.__version__}, Keras {keras.__version__}, "
          f"{os.cpu_count()} CPU cores, load {os.getloadavg()[0]:.2f}")
    roof = roofs(args.batch, args.size)
    for dt, r in roof.items():
        print(f"# {dt} roof: matmul 4096^2 {r['gemm_gflops']:.0f} GFLOP/s, conv 3x3 64->64 "
              f"{r['conv_gflops']:.0f} GFLOP/s -> roof {r['roof_gflops']:.0f}")
    print("# FLOPs: analytic per layer call (usmr_tf.models.flops); 'live' = profiler statistics "
          "over the ops train_step runs; 'whole graph' = tf.compat.v1.profiler total")
    header = (f"{'model':<17} {'precision':<15} {'params':>10} {'step s':>7} {'img/s':>6} "
              f"{'GFLOP/step':>10} {'live':>7} {'whole':>7} {'GFLOP/s':>7} {'% roof':>6} {'load':>5}")
    print(header)
    print("-" * len(header))
    rows = []
    for name in args.models:
        for precision in args.precisions:
            r = bench_model(name, precision, args.size, args.batch, args.repeats,
                            not args.no_graph_check and precision == "float32")
            dt = "float32" if precision == "float32" else "bfloat16"
            r["roof"] = dt
            r["pct_roof"] = 100 * r["gflops"] / roof[dt]["roof_gflops"]  # final: see below
            rows.append(r)
            live = r.get("profiler_live_flops")
            whole = r.get("profiler_total_flops_unpruned")
            fmt = lambda v: f"{v / 1e9:7.0f}" if v else f"{'-':>7}"  # noqa: E731
            print(f"{name:<17} {precision:<15} {r['params']:>10,d} {r['step_s']:>7.2f} "
                  f"{r['images_s']:>6.2f} {r['flops_step'] / 1e9:>10.0f} {fmt(live)} "
                  f"{fmt(whole)} {r['gflops']:>7.0f} {r['pct_roof']:>5.0f}% "
                  f"{max(r['loadavg_1m']):>5.1f}", flush=True)
            keras.backend.clear_session()
    speedups = {}
    for name in args.models:
        by = {r["precision"]: r for r in rows if r["model"] == name}
        if {"float32", "mixed_bfloat16"} <= set(by):
            speedups[name] = by["float32"]["step_s"] / by["mixed_bfloat16"]["step_s"]
            print(f"# {name}: mixed_bfloat16 speed-up x{speedups[name]:.2f}")
    roof_after = roofs(args.batch, args.size, repeats=3)
    print(f"# roofs again after the models: float32 {roof_after['float32']['roof_gflops']:.0f}, "
          f"bfloat16 {roof_after['bfloat16']['roof_gflops']:.0f} GFLOP/s (drift = shared CPU)")
    # A roof is the best the machine did before or after the models (less disturbed by others).
    best_roof = {dt: max(roof[dt]["roof_gflops"], roof_after[dt]["roof_gflops"]) for dt in roof}
    for r in rows:
        r["pct_roof"] = 100 * r["gflops"] / best_roof[r["roof"]]
        print(f"# {r['model']:<17} {r['precision']:<15} {r['gflops']:6.0f} GFLOP/s = "
              f"{r['pct_roof']:5.1f} % of the best {r['roof']} roof ({best_roof[r['roof']]:.0f})")
    if not args.no_write:
        results_io.update("train", {
            "command": "benchmarks/bench_train.py " + " ".join(argv or sys.argv[1:]),
            "size": args.size, "batch": args.batch, "repeats": args.repeats,
            "roofs": roof, "roofs_after": roof_after, "best_roofs": best_roof, "models": rows, "bf16_speedup": speedups,
            "tf_version": tf.__version__, "keras_version": keras.__version__,
        })
    return 0


if __name__ == "__main__":
    sys.exit(main())
