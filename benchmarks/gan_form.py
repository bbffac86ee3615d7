"""GAN loss form check behind docs/models.md ("GAN loss form"): LSGAN vs non-saturating BCE.

    .venv/bin/python benchmarks/gan_form.py [--steps 40 --epochs 3 --seeds 0 1]

Trains `ours` (32x32, base_filters 8, depth 3, batch 8) on 64 unpaired phantoms for each form
and seed, prints d_app and loss_lat per epoch and the held-out PSNR / SSIM / MAE against the
paired phantom MR (16 phantoms of another seed). Research numbers, not for diagnosis.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from usmr_tf.data import unpaired_phantoms  # noqa: E402
from usmr_tf.models.registry import build_model  # noqa: E402


def run(form, seed, epochs, steps):
    keras.utils.set_random_seed(seed)
    us, mr, _ = unpaired_phantoms(64, 64, size=32, seed=0)
    test_us, _, test_paired = unpaired_phantoms(16, 16, size=32, seed=1)
    train = tf.data.Dataset.from_tensor_slices((us, mr)).shuffle(64, seed=seed).repeat().batch(8)
    test = tf.data.Dataset.from_tensor_slices((test_us, test_paired, test_paired)).batch(8)
    model = build_model("ours", image_size=32, base_filters=8, depth=3, gan_loss=form)
    model.compile(gan_loss=form)
    hist = model.fit(train, epochs=epochs, steps_per_epoch=steps, verbose=0).history
    scores = model.evaluate(test, return_dict=True, verbose=0)
    return hist, scores


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args(argv)
    print("| form | seed | d_app per epoch | loss_lat per epoch | held-out PSNR / SSIM / MAE |")
    print("|---|---|---|---|---|")
    for form in ("lsgan", "bce"):
        for seed in args.seeds:
            hist, s = run(form, seed, args.epochs, args.steps)
            fmt = lambda xs: ", ".join(f"{x:.3f}" for x in xs)  # noqa: E731
            print(f"| {form} | {seed} | {fmt(hist['d_app'])} | {fmt(hist['loss_lat'])} | "
                  f"{s['psnr']:.2f} / {s['ssim']:.3f} / {s['mae']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
