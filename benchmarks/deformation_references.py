"""What the deformation score rewards: made-up "synthesized MR" sets scored like a model (issue 18).

The deformation score (`usmr_tf.metrics.deformation`, paper §3.2) registers each image to a
plane-matched real MR with an FFD and reports how much it had to warp. This benchmark scores
images that no model made, from the test US of a prepared dataset, against that split's real MR:

| row | image |
|---|---|
| identity | the US passed through (the reference row of `usmr evaluate`) |
| blurred US | the US with a Gaussian blur (sigma `--blur` px) inside the head |
| half-contrast US | the US's interior at half its contrast (0.5 x) |
| inverted US | the US's interior with its brightness reversed (-1 x): anechoic fluid bright, as in T2 MR |
| blank head | the head's silhouette, one grey level inside, nothing in it |
| real MR | the train split's real MR (other subjects), the floor of `usmr evaluate` |

and prints deformation (mean ± sd over images), as published and with both images
rank-equalised before registration (`RegistrationConfig(equalise=True)`: blind to contrast),
beside SWD to the same real MR, and any `--model` exports' own rows for comparison.

    .venv/bin/python benchmarks/deformation_references.py --data ../runs/preset_v3_data64 \\
        [--model EXPORT ...] [--json F]

Measures and prints; research numbers, not for diagnosis.
"""

import argparse
import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

from usmr_tf.metrics import deformation, swd  # noqa: E402
from usmr_tf.metrics.checks import foreground_mask  # noqa: E402

NOTICE = "research numbers, not for diagnosis"


def inside_head(us, value_of):
    """Each US `[H, W]` with its head's interior replaced by `value_of(image)`, -1 outside."""
    return np.stack([np.where(foreground_mask(u), value_of(u), -1.0) for u in us]).astype(
        "float32")


def made_up_sets(us, blur):
    return {
        "identity": us,
        "blurred US": inside_head(us, lambda u: ndimage.gaussian_filter(u, blur)),
        "half-contrast US": inside_head(us, lambda u: 0.5 * u),
        "inverted US": inside_head(us, lambda u: -u),
        "blank head": inside_head(us, lambda u: np.zeros_like(u)),
    }


def score(images, real_mr):
    """Deformation as published and rank-equalised (`RegistrationConfig(equalise=True)`), SWD."""
    row = {"swd": swd.swd(images[..., None], real_mr[..., None], seed=0)["mean"]}
    for key, equalise in (("deformation", False), ("deformation_equalised", True)):
        config = deformation.RegistrationConfig(equalise=equalise)
        result = deformation.deformation_scores(images, real_mr, top_k=3, config=config)
        row[key], row[f"{key}_sd"] = result["mean"], result["std"]
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, type=pathlib.Path,
                        help="a `usmr prepare` folder (us/test.npy, mr/test.npy, mr/train.npy)")
    parser.add_argument("--model", action="append", default=[], type=pathlib.Path,
                        help="a synthesis export to score beside the made-up sets (repeatable)")
    parser.add_argument("--blur", type=float, default=3.0, help="blur sigma in px (default 3)")
    parser.add_argument("--json", type=pathlib.Path, help="write the rows here too")
    args = parser.parse_args(argv)
    us = np.load(args.data / "us" / "test.npy")[..., 0]
    real_mr = np.load(args.data / "mr" / "test.npy")[..., 0]
    rows = {name: score(images, real_mr) for name, images in made_up_sets(us, args.blur).items()}
    for model in args.model:
        from usmr_tf.export.runtimes import SavedModelRunner
        from usmr_tf.export.synthesis import predict_batched

        synth = predict_batched(SavedModelRunner(model), us[..., None])[..., 0]
        rows[f"model {model.name}"] = score(synth, real_mr)
    # as `usmr evaluate`'s real-MR row: the other split's first slices, as many as the US
    rows["real MR"] = score(np.load(args.data / "mr" / "train.npy")[: len(us), ..., 0], real_mr)
    print(f"{len(us)} test US of {args.data}; deformation and SWD against its "
          f"{len(real_mr)} test-split MR ({NOTICE})")
    print(f"{'row':<22} {'deformation':>17} {'rank-equalised':>17} {'SWD':>8}")
    for name, row in rows.items():
        print(f"{name:<22} {row['deformation']:>9.3f} ± {row['deformation_sd']:.3f} "
              f"{row['deformation_equalised']:>9.3f} ± {row['deformation_equalised_sd']:.3f} "
              f"{row['swd']:>8.1f}")
    if args.json:
        args.json.write_text(json.dumps({"data": str(args.data), "notice": NOTICE,
                                         "blur_sigma_px": args.blur, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
