"""Does mixed_bfloat16 keep quality? Same model, data, seed and steps in float32 and in
mixed_bfloat16; PSNR / SSIM of the synthesized MR against the paired phantom MR on held-out
slices (the paired MR is never used in training).

CPU budget: by default 64x64 phantoms, batch 8, 150 steps of each model (the recipes train
128x128 for many more steps): a check that bfloat16 does not hurt early training, not a
converged comparison. Pass --size 128 --steps 1000 for a longer one.

Writes the "bf16_quality" section of benchmarks/results.json.

    .venv/bin/python benchmarks/bf16_quality.py [--models ours] [--size 64] [--steps 150]
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

from usmr_tf.training import testing, trainer  # noqa: E402
from usmr_tf.training.recipe import load_recipe  # noqa: E402


def run(name, precision, size, batch, steps, n_us, n_mr):
    recipe = load_recipe(testing.REPO / "recipes" / f"{name}.yaml", [
        f"data.image_size={size}", f"training.batch_size={batch}", "data.source=phantoms",
        f"data.n_us={n_us}", f"data.n_mr={n_mr}", f"training.mixed_precision={precision}"])
    keras.utils.set_random_seed(0)
    train, val = trainer.load_splits(recipe["data"])
    model = trainer.create_model(recipe, tf.distribute.get_strategy())
    ds = trainer._dataset(train, batch, 0, True)
    t0 = time.perf_counter()
    model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
    seconds = time.perf_counter() - t0
    synth = np.concatenate([model.predict_on_batch(val.us[i:i + 32])
                            for i in range(0, len(val.us), 32)])
    target = val.mr_paired
    psnr = float(tf.reduce_mean(tf.image.psnr(synth, target, max_val=2.0)))
    ssim = float(tf.reduce_mean(tf.image.ssim(tf.constant(synth), tf.constant(target),
                                              max_val=2.0)))
    keras.backend.clear_session()
    return {"model": name, "precision": precision, "psnr_db": psnr, "ssim": ssim,
            "train_s": seconds, "steps": steps, "n_val": len(val.us),
            "loadavg_1m": round(os.getloadavg()[0], 2)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["ours"])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--n-us", type=int, default=400)
    parser.add_argument("--n-mr", type=int, default=200)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    tf.get_logger().setLevel("ERROR")
    print(f"# bf16_quality: {args.size}x{args.size} phantoms, batch {args.batch}, {args.steps} "
          f"steps, seed 0; PSNR/SSIM vs paired MR on held-out slices")
    rows, verdict = [], {}
    for name in args.models:
        pair = {p: run(name, p, args.size, args.batch, args.steps, args.n_us, args.n_mr)
                for p in ("float32", "mixed_bfloat16")}
        for r in pair.values():
            rows.append(r)
            print(f"{name:<10} {r['precision']:<15} PSNR {r['psnr_db']:6.2f} dB  SSIM "
                  f"{r['ssim']:.3f}  train {r['train_s']:6.1f} s  load {r['loadavg_1m']}",
                  flush=True)
        delta = pair["mixed_bfloat16"]["psnr_db"] - pair["float32"]["psnr_db"]
        verdict[name] = {"psnr_delta_db": delta, "within_0_5_db": abs(delta) <= 0.5}
        print(f"# {name}: bf16 - float32 = {delta:+.2f} dB "
              f"({'within' if abs(delta) <= 0.5 else 'OUTSIDE'} 0.5 dB)")
    if not args.no_write:
        results_io.update("bf16_quality", {
            "command": "benchmarks/bf16_quality.py " + " ".join(argv or sys.argv[1:]),
            "size": args.size, "batch": args.batch, "steps": args.steps, "rows": rows,
            "verdict": verdict})
    return 0


if __name__ == "__main__":
    sys.exit(main())
