"""Why does the anatomy-aware model collapse? Probe a trained run on unseen US (issue 11).

    .venv/bin/python benchmarks/collapse_probe.py RUN_DIR [RUN_DIR ...] --data PREPARED_DIR

For each run (a `usmr train --out` folder with `model.keras`) it synthesizes MR from the
prepared test split and prints:
- `diversity` of synth MR (0 = one image for every input) and of back-inferred US;
- `proj_l1`: |decoder-E(encoder-D(synth MR)) - US|, the reverse path's L1 (Eq. 6) on unseen US;
- `proj_l1@s`: the same after adding Gaussian noise of std `s` to the synth MR first.
If `proj_l1` stays low while diversity is low and small noise destroys it, the US is carried
through the synthesized MR as a low-amplitude code the back path reads ("steganography",
Chu et al. 2017) rather than as visible anatomy: L_proj is satisfied without preventing
collapse. Research images, not for diagnosis.
"""

import argparse
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import usmr_tf.models.registry  # noqa: E402,F401 - registers the model classes
from usmr_tf.data.cache import load_prepared  # noqa: E402
from usmr_tf.metrics.diversity import mean_pairwise_l1, output_diversity  # noqa: E402
from usmr_tf.metrics.swd import swd  # noqa: E402

NOISE = (0.01, 0.03, 0.1)


def probe(model, us, real_mr, rng):
    out = model.forward(us, training=False)
    synth = np.asarray(out["synth_mr"])
    back = np.asarray(out["back_us"])
    row = {
        "diversity": output_diversity(us, synth),
        "swd_test": swd(synth, real_mr, seed=0)["mean"],
        "back_diversity": output_diversity(us, back),
        "proj_l1": float(np.abs(back - us).mean()),
    }
    def back_l1(images):  # decoder-E(encoder-D(images)) against the US (Eq. 6)
        latent, skips = model.back_encoder(images, training=False)
        return float(np.abs(np.asarray(model.back_decoder((latent, skips), training=False)) - us).mean())

    for s in NOISE:
        row[f"proj_l1@{s}"] = back_l1(synth + rng.normal(0, s, synth.shape).astype(np.float32))
    # the back path on a *collapsed* input: the mean synth image for everyone
    row["proj_l1@mean"] = back_l1(np.repeat(synth.mean(0, keepdims=True), len(synth), 0))
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--data", required=True, help="`usmr prepare` folder at the runs' size")
    p.add_argument("--weights", default="model.keras",
                   help="file in each run: model.keras, or a .weights.h5 with recipe.yaml")
    args = p.parse_args()
    us, _ = load_prepared(args.data, "test", modality="us")
    real_mr, _ = load_prepared(args.data, "test", modality="mr")
    train_mr, _ = load_prepared(args.data, "train", modality="mr")
    rows = {
        "identity": {"diversity": 1.0, "swd_test": swd(us, real_mr, seed=0)["mean"]},
        "real MR": {"diversity": mean_pairwise_l1(train_mr) / mean_pairwise_l1(us),
                    "swd_test": swd(train_mr, real_mr, seed=0)["mean"]},
    }
    for run in args.runs:
        run = pathlib.Path(run)
        if args.weights.endswith(".keras"):
            model = keras.saving.load_model(run / args.weights, compile=False)
        else:
            from usmr_tf.training.recipe import load_recipe
            from usmr_tf.training.trainer import build_model

            recipe = load_recipe(run / "recipe.yaml")
            model = build_model(recipe["model"], recipe["data"]["image_size"])
            model.load_weights(run / args.weights)
        rows[run.name] = probe(model, us, real_mr, np.random.default_rng(0))
        keras.backend.clear_session()
    names = list(rows[list(rows)[-1]])
    print(f"{len(us)} unseen US, {len(real_mr)} test MR ({args.data}); reference rows: identity "
          f"(US passed through), real MR (training MR slices, other subjects)")
    print("run".ljust(14) + "".join(n.rjust(15) for n in names))
    for run, row in rows.items():
        print(run.ljust(14) + "".join(f"{row[n]:15.3f}" if n in row else "-".rjust(15)
                                      for n in names))


if __name__ == "__main__":
    main()
