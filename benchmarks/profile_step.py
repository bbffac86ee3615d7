"""Where one training step's time goes: TF profiler trace of `train_step`, summed per op type.

Builds a model from its recipe as `bench_train.py` does, runs a warm-up step, traces
`--steps` steps with `tf.profiler.experimental` and sums the host "TF Op" events of the trace
(XPlane) by op type (`_MklNativeConv2D`, `Mean`, `MirrorPad`, ...), printing the top ones
with their share of the traced op time. Use it to find waste per step (ops that fall off
oneDNN, layout transposes, element-wise chains, casts); it measures and prints, it is not a
test. Op time sums the two intra-op threads' busy time, so it can exceed the wall time.

Usage:
    .venv/bin/python benchmarks/profile_step.py [--model cyclegan_resnet9]
        [--precision mixed_bfloat16] [--size 128] [--batch 8] [--steps 1] [--top 20]
"""

import argparse
import collections
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402

from usmr_tf.training import testing, trainer  # noqa: E402
from usmr_tf.training.recipe import load_recipe  # noqa: E402


def op_type(name):
    """`"model/conv1/Conv2D:_MklNativeConv2D"` -> `"_MklNativeConv2D"`; None for events
    that are not TF ops (`ExecutorState::Process`, Python frames, ...)."""
    if "::" in name or ":" not in name:
        return None
    kind = name.rsplit(":", 1)[-1]
    return kind if kind and " " not in kind else None


def op_times(xspace):
    """{op type: (total microseconds, count)} over the TF-op events of the host plane's
    executor threads (`tf_Compute/...`, `tf_inter_op/...`)."""
    totals, counts = collections.Counter(), collections.Counter()
    for plane in xspace.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        names = {k: m.name for k, m in plane.event_metadata.items()}
        for line in plane.lines:
            if line.name == "python":
                continue
            for event in line.events:
                kind = op_type(names.get(event.metadata_id, ""))
                if kind is None:
                    continue
                totals[kind] += event.duration_ps / 1e6
                counts[kind] += 1
    return {k: (totals[k], counts[k]) for k in totals}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cyclegan_resnet9", help="recipe name in recipes/")
    parser.add_argument("--precision", default="mixed_bfloat16",
                        choices=["float32", "mixed_bfloat16"])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    recipe = load_recipe(testing.REPO / "recipes" / f"{args.model}.yaml",
                         [f"data.image_size={args.size}", f"training.batch_size={args.batch}",
                          f"training.mixed_precision={args.precision}"])
    keras.utils.set_random_seed(0)
    model = trainer.create_model(recipe, tf.distribute.get_strategy())
    from usmr_tf.data.phantoms import unpaired_phantoms

    us, mr, _ = unpaired_phantoms(args.batch, args.batch, args.size, seed=0)
    data = (tf.constant(us), tf.constant(mr))
    step = tf.function(model.train_step)
    step(data)["loss"].numpy()  # trace + warm-up
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        for _ in range(args.steps):
            step(data)["loss"].numpy()
        wall = (time.perf_counter() - start) / args.steps
        tf.profiler.experimental.stop()
        files = sorted(pathlib.Path(logdir).rglob("*.xplane.pb"))
        if not files:
            print("no trace written", file=sys.stderr)
            return 1
        xspace = xplane_pb2.XSpace()
        xspace.ParseFromString(files[-1].read_bytes())
    times = op_times(xspace)
    total = sum(t for t, _ in times.values())
    print(f"# {args.model} {args.precision} {args.size}x{args.size} batch {args.batch}: "
          f"{wall:.2f} s/step wall (traced), op time {total / 1e6 / args.steps:.2f} s/step "
          f"(both threads), load {os.getloadavg()[0]:.1f}")
    print(f"{'op type':<36} {'s/step':>8} {'share':>6} {'calls/step':>10}")
    for kind, (us_total, n) in sorted(times.items(), key=lambda kv: -kv[1][0])[: args.top]:
        print(f"{kind:<36} {us_total / 1e6 / args.steps:>8.3f} {100 * us_total / total:>5.1f}% "
              f"{n // args.steps:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
