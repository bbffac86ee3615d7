"""Training throughput of every model (ae, gan, cyclegan, ours) next to a Conv2D roof.

For each model, built from its recipe (recipes/NAME.yaml) at SIZE x SIZE, global batch BATCH:

- step time: wall time of `model.fit` over `--steps` steps on a fixed in-memory batch, after
  `--warmup` steps (tracing excluded);
- FLOPs per step: counted from the traced `train_step` graph (forward, backward and optimizer
  updates of generators and discriminators) with `tf.compat.v1.profiler` and
  `ProfileOptionBuilder.float_operation()`, which sums the registered FLOP statistics of each
  op (Conv2D, Conv2DBackpropInput/Filter, MatMul, element-wise ops, ...);
- achieved GFLOP/s = FLOPs per step / step time;
- the roof: GFLOP/s of one large 3x3 Conv2D (forward, `tf.function`) measured in the same run.

Usage:
    .venv/bin/python benchmarks/bench_train.py [--models ae gan cyclegan ours] [--size 128]
        [--batch 8] [--steps 5] [--warmup 2]
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from usmr_tf.training import testing, trainer  # noqa: E402
from usmr_tf.training.recipe import load_recipe  # noqa: E402


def count_flops(concrete_function):
    """FLOPs of one call of `concrete_function`, from its graph's op statistics."""
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    profile = tf.compat.v1.profiler.profile(concrete_function.graph, options=options)
    return int(profile.total_float_ops)


def conv2d_roof(batch, size, channels=64, repeats=10):
    """GFLOP/s of a `[batch, size, size, channels]` 3x3 same Conv2D to `channels` filters.

    Also checks the profiler's count against the analytic 2*B*H*W*Cin*Cout*9 for this op.
    """
    x = tf.random.normal([batch, size, size, channels])
    w = tf.random.normal([3, 3, channels, channels])
    conv = tf.function(lambda a, b: tf.nn.conv2d(a, b, 1, "SAME"))
    flops = 2 * batch * size * size * channels * channels * 9
    counted = count_flops(conv.get_concrete_function(x, w))
    if counted != flops:
        raise RuntimeError(f"profiler counted {counted} FLOPs for the roof Conv2D, expected {flops}")
    conv(x, w).numpy()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        conv(x, w).numpy()
        best = min(best, time.perf_counter() - t0)
    return flops / best / 1e9


def bench_model(name, size, batch, steps, warmup):
    recipe = load_recipe(testing.REPO / "recipes" / f"{name}.yaml",
                         [f"data.image_size={size}", f"training.batch_size={batch}"])
    keras.utils.set_random_seed(0)
    model = trainer.create_model(recipe, tf.distribute.get_strategy())
    from usmr_tf.data.phantoms import unpaired_phantoms

    us, mr, _ = unpaired_phantoms(batch, batch, size, seed=0)
    data = (tf.constant(us), tf.constant(mr))
    spec = tuple(tf.TensorSpec(x.shape, x.dtype) for x in data)
    flops = count_flops(tf.function(model.train_step).get_concrete_function(spec))

    dataset = tf.data.Dataset.from_tensors(data).repeat()
    # tf.data autotuning off: otherwise the iterator's teardown at the end of each timed `fit`
    # waits for the autotune thread's doubling sleep (2.56 / 5.11 / 10.23 / 20.47 s), which
    # was being counted as step time.
    options = tf.data.Options()
    options.autotune.enabled = False
    dataset = dataset.with_options(options)
    model.fit(dataset, epochs=1, steps_per_epoch=warmup, verbose=0, shuffle=False)
    t0 = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
    step = (time.perf_counter() - t0) / steps
    n_params = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    return {"model": name, "params": n_params, "step_s": step, "images_s": batch / step,
            "gflop_step": flops / 1e9, "gflops": flops / step / 1e9}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["ae", "gan", "cyclegan", "ours"])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args(argv)
    tf.get_logger().setLevel("ERROR")

    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    print(f"# bench_train: {args.size}x{args.size}, batch {args.batch}, {args.steps} timed steps "
          f"after {args.warmup} warm-up; TF {tf.__version__}, Keras {keras.__version__}, "
          f"device {devices[0].name}, {os.cpu_count()} CPU cores")
    print("# FLOPs: counted from the traced train_step graph (tf.compat.v1.profiler, "
          "float_operation)")
    roof = conv2d_roof(args.batch, args.size)
    print(f"# Conv2D roof (3x3, 64->64 ch, {args.batch}x{args.size}^2, forward; profiler count "
          f"checked against 2*B*H*W*Cin*Cout*9): {roof:.1f} GFLOP/s")
    header = (f"{'model':<10} {'params':>9} {'step (s)':>9} {'img/s':>7} "
              f"{'GFLOP/step':>11} {'GFLOP/s':>8} {'% roof':>7}")
    print(header)
    print("-" * len(header))
    for name in args.models:
        r = bench_model(name, args.size, args.batch, args.steps, args.warmup)
        print(f"{r['model']:<10} {r['params']:>9,d} {r['step_s']:>9.3f} {r['images_s']:>7.2f} "
              f"{r['gflop_step']:>11.2f} {r['gflops']:>8.1f} {100 * r['gflops'] / roof:>6.1f}%",
              flush=True)
    roof_after = conv2d_roof(args.batch, args.size)
    print(f"# Conv2D roof measured again after the models: {roof_after:.1f} GFLOP/s "
          "(a large drift means other processes shared the CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
