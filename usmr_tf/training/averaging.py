"""Uniform weight averages of runs of one model ("model soups", Wortsman et al. 2022).

    python -m usmr_tf.training.averaging OUT.weights.h5 A.weights.h5 B.weights.h5 [...]

Every floating-point array of the model's weights becomes the mean of the inputs' arrays
(batch-norm statistics included); the optimizer's state and integer arrays are the first
input's. The inputs must be `.weights.h5` files of the same model configuration (e.g.
fine-tunes from one start with other seeds, or checkpoints of one run): a missing array or
another shape is an error naming the file. The output is written atomically. Put it in a
run folder with that run's `recipe.yaml` to export it with `usmr export --checkpoint`.
"""

import argparse
import pathlib
import sys

import h5py
import numpy as np

from usmr_tf.atomic import atomic_path
from usmr_tf.errors import DataError, UsmrError


def weight_arrays(path):
    """`{dataset path: array}` of every array in a `.weights.h5` file (`DataError` naming the
    file when it cannot be read)."""
    try:
        with h5py.File(path, "r") as f:
            out = {}
            f.visititems(lambda k, v: out.__setitem__(k, v[()])
                         if isinstance(v, h5py.Dataset) else None)
            return out
    except OSError as exc:
        raise DataError(f"not a readable .weights.h5 ({exc})", path) from None


def average_weight_files(paths, out):
    """Writes the mean of the `.weights.h5` files `paths` (>= 2) to `out`; returns the number
    of arrays averaged."""
    paths = [pathlib.Path(p) for p in paths]
    if len(paths) < 2:
        raise UsmrError("averaging needs at least two .weights.h5 files")
    for p in paths:
        if not p.is_file():
            raise DataError("no such file", p)
    first = weight_arrays(paths[0])
    others = [weight_arrays(p) for p in paths[1:]]
    for p, arrays in zip(paths[1:], others):
        for key, value in first.items():
            if key not in arrays or np.shape(arrays[key]) != np.shape(value):
                raise DataError(f"not weights of the same model as {paths[0]} (array {key} "
                                "missing or of another shape)", p)
    averaged = 0
    with atomic_path(out) as tmp:
        with h5py.File(paths[0], "r") as src, h5py.File(tmp, "w") as dst:
            for key, value in src.attrs.items():
                dst.attrs[key] = value

            def copy(name, obj):
                nonlocal averaged
                if isinstance(obj, h5py.Group):
                    group = dst.require_group(name)
                    for key, value in obj.attrs.items():
                        group.attrs[key] = value
                    return
                value = first[name]
                if np.asarray(value).dtype.kind == "f" and not name.startswith("optimizer/"):
                    value = np.mean([first[name]] + [a[name] for a in others], axis=0,
                                    dtype=np.float64).astype(np.asarray(first[name]).dtype)
                    averaged += 1
                dst.create_dataset(name, data=value)
                for key, attr in obj.attrs.items():
                    dst[name].attrs[key] = attr

            src.visititems(copy)
    return averaged


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="the averaged .weights.h5 to write")
    parser.add_argument("inputs", nargs="+", help=".weights.h5 files of one model")
    args = parser.parse_args(argv)
    try:
        n = average_weight_files(args.inputs, args.out)
    except UsmrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {n} arrays averaged over {len(args.inputs)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
