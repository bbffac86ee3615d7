"""Fitting 2D slices into a square frame (aspect ratio kept) and back.

`fit_to_square` scales a stack `[N, h, w]` so that its physically longer side spans
`size` pixels (pixel sizes may differ between the two axes), then pads with the
background value -1, centred. `SquareFit` records the transform; `unfit_square`
inverts it exactly in shape.
"""

import dataclasses

import numpy as np
from scipy import ndimage

BACKGROUND = -1.0


@dataclasses.dataclass(frozen=True)
class SquareFit:
    """`[h, w]` -> `[size, size]`: resize to `resized` then pad by `offset` (top, left)."""

    in_shape: tuple  # (h, w) before fitting
    resized: tuple  # (rh, rw) after scaling, each <= size
    offset: tuple  # (top, left) padding
    size: int

    @classmethod
    def plan(cls, in_shape, size, pixel_size=(1.0, 1.0)):
        h, w = (int(v) for v in in_shape)
        extent = (h * float(pixel_size[0]), w * float(pixel_size[1]))
        scale = size / max(extent)
        resized = tuple(int(min(size, max(1, round(e * scale)))) for e in extent)
        offset = tuple((size - r) // 2 for r in resized)
        return cls(in_shape=(h, w), resized=resized, offset=offset, size=int(size))

    def to_dict(self):
        return {k: list(v) if isinstance(v, tuple) else v for k, v in
                dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d):
        return cls(in_shape=tuple(d["in_shape"]), resized=tuple(d["resized"]),
                   offset=tuple(d["offset"]), size=int(d["size"]))


def resize_stack(stack, shape, order=1):
    """Resizes the last two axes of `stack` to `shape` (corner-aligned, exact output shape)."""
    stack = np.asarray(stack, dtype=np.float32)
    factors = [1.0] * (stack.ndim - 2) + [t / s for t, s in zip(shape, stack.shape[-2:])]
    if all(f == 1.0 for f in factors):
        return stack
    out = ndimage.zoom(stack, factors, order=order, mode="nearest", grid_mode=False)
    assert out.shape[-2:] == tuple(shape), (out.shape, shape)
    return out


def fit_to_square(stack, size, pixel_size=(1.0, 1.0), order=1):
    """Returns (`[N, size, size]` float32, `SquareFit`) for a stack `[N, h, w]`."""
    stack = np.asarray(stack, dtype=np.float32)
    fit = SquareFit.plan(stack.shape[-2:], size, pixel_size)
    resized = resize_stack(stack, fit.resized, order=order)
    out = np.full(stack.shape[:-2] + (size, size), BACKGROUND, dtype=np.float32)
    (top, left), (rh, rw) = fit.offset, fit.resized
    out[..., top:top + rh, left:left + rw] = resized
    return out, fit


def unfit_square(stack, fit, order=1):
    """Inverse of `fit_to_square`: `[N, size, size]` -> `[N, h, w]`."""
    stack = np.asarray(stack, dtype=np.float32)
    if stack.shape[-2:] != (fit.size, fit.size):
        raise ValueError(f"expected slices of {fit.size}x{fit.size}, got {stack.shape[-2:]}")
    (top, left), (rh, rw) = fit.offset, fit.resized
    return resize_stack(stack[..., top:top + rh, left:left + rw], fit.in_shape, order=order)
