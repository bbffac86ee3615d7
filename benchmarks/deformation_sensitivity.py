"""How far the deformation score moves when its input moves by nothing one could see.

The deformation score (`usmr_tf.metrics.deformation`, paper §3.2) plane-matches each image to
a real MR slice and registers it with an FFD. Both steps optimise, and an optimiser can end in
another place after a change far below the images' 8-bit resolution (1/127.5), such as the
float differences of the same model run on another CPU. This benchmark scores one image set
as it is and again after adding Gaussian noise of sd `--sigma` (default 1e-6; clipped to
[-1, 1]) with seeds 101, 102, ...; it prints each draw's mean score, how many images were matched to another real
MR slice, and the mean per-image change, then the spread of the mean over the draws.

    .venv/bin/python benchmarks/deformation_sensitivity.py --data DIR --model EXPORT|identity \\
        --ref DIR:SPLIT [--draws 6] [--sigma 1e-6] [--json OUT.json]

`--data`: a prepared folder whose test US are synthesized (`identity`: passed through);
`--ref`: the real MR the score is taken against (a prepared folder's MR split, e.g.
`DIR:test` or `DIR:heldout`). Single-threaded registration: ~35 s a draw at 84 images.
Measures and prints; research numbers, not for diagnosis.
"""

import argparse
import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from usmr_tf.data import cache  # noqa: E402
from usmr_tf.metrics import deformation  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="prepared folder: its us/test are scored")
    parser.add_argument("--model", required=True, help="an export, or identity")
    parser.add_argument("--ref", required=True, help="DIR:SPLIT, the real MR")
    parser.add_argument("--draws", type=int, default=6)
    parser.add_argument("--sigma", type=float, default=1e-6)
    parser.add_argument("--json", help="also write every per-image score as JSON")
    args = parser.parse_args(argv)
    folder, split = cache.split_address(args.ref)
    if split is None:
        parser.error(f"--ref {args.ref!r} is not DIR:SPLIT")
    us = cache.load_prepared(args.data, "test", modality="us")[0]
    real = cache.load_prepared(folder, split, modality="mr")[0]
    if args.model == "identity":
        images = us
    else:
        from usmr_tf.export.synthesis import synthesize_slices

        images = np.clip(synthesize_slices(args.model, us), -1, 1)
    draws = []
    for d in range(args.draws + 1):
        # clipped to the images' range [-1, 1]: the background stays the background (NMI's
        # histogram drops values outside [-1, 1], so unclipped noise would change the score
        # through its edge, not through the image)
        x = images if d == 0 else np.clip(images + np.random.default_rng(100 + d).normal(
            0, args.sigma, images.shape).astype(np.float32), -1, 1)
        r = deformation.deformation_scores(x, real, top_k=3)
        draws.append({"mean": r["mean"], "scores": r["scores"].tolist(),
                      "matched": r["matched"].tolist()})
        moved = np.abs(r["scores"] - np.array(draws[0]["scores"])).mean()
        rematched = (r["matched"] != np.array(draws[0]["matched"])).mean()
        print(f"{'as is' if d == 0 else f'noise seed {100 + d}'}: mean {r['mean']:.3f}, "
              f"{rematched:.0%} matched to another slice, per-image change {moved:.3f}",
              flush=True)
    means = np.array([d["mean"] for d in draws])
    print(f"mean over {len(means)} draws (as is + {args.draws} perturbed, sd {args.sigma:g}): "
          f"{means.mean():.3f} ± {means.std(ddof=1):.3f} (range {means.min():.3f}-"
          f"{means.max():.3f})")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(
            {"data": args.data, "model": args.model, "ref": args.ref, "sigma": args.sigma,
             "draws": draws, "note": "research numbers, not for diagnosis"}, indent=1) + "\n")


if __name__ == "__main__":
    main()
