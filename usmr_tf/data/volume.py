"""Volume -> 2D slices and back, keeping the geometry.

`volume_to_slices` does, in order:

1. reorient to canonical RAS (axis permutation/flip only: exact, no interpolation);
2. find the foreground (the given brain mask, else Otsu's threshold) and crop to its
   bounding box plus a margin;
3. normalise intensities: foreground percentiles -> [-1, 1] (outside a given mask: -1);
4. resample with `scipy.ndimage.zoom` (linear): the slicing axis to the target spacing
   and the in-plane axes, isotropically, so the longer side spans `size` pixels (aspect
   ratio kept). Resampling to isotropic `spacing` and the in-plane resize are fused
   into a single interpolation;
5. keep the slices whose foreground area is at least `min_foreground` times the largest
   one, and pad them to `size x size` with -1.

A `SliceGeometry` records every step, so `slices_to_volume(slices, geometry)` puts a
stack back into the ORIGINAL voxel grid (`geometry.shape`, `geometry.affine`).

Slices of a RAS volume along axis 2 (axial) have rows along R (x) and columns along A
(y): the anterior-posterior axis is horizontal, like the aligned HC18 heads.
"""

import dataclasses

import nibabel as nib
import numpy as np
from scipy import ndimage

from usmr_tf.data.intensity import DEFAULT_PERCENTILES, foreground_mask, normalize_intensity
from usmr_tf.data.nifti import Volume, load_mask, load_volume
from usmr_tf.data.square import BACKGROUND, SquareFit
from usmr_tf.errors import DataError

_RAS = nib.orientations.axcodes2ornt("RAS")


def _to_ras_transform(affine):
    return nib.orientations.ornt_transform(nib.orientations.io_orientation(affine), _RAS)


def reorient_to_ras(data, affine):
    """Returns (data, affine) permuted/flipped to the closest canonical RAS orientation."""
    transform = _to_ras_transform(affine)
    ras = nib.orientations.apply_orientation(data, transform)
    return ras, affine @ nib.orientations.inv_ornt_aff(transform, data.shape)


def _ras_shape(shape, transform):
    """Shape after `apply_orientation(transform)` of an array of `shape`."""
    out = [0] * len(shape)
    for src, (dst, _) in enumerate(transform):
        out[int(dst)] = int(shape[src])
    return tuple(out)


def _from_ras(data, affine):
    """Inverse of `reorient_to_ras` for an array in the RAS grid of a volume with `affine`."""
    transform = nib.orientations.ornt_transform(_RAS, nib.orientations.io_orientation(affine))
    return nib.orientations.apply_orientation(data, transform)


def _zoom_to(block, shape, order):
    factors = [t / s for t, s in zip(shape, block.shape)]
    if all(f == 1.0 for f in factors):
        return block
    out = ndimage.zoom(block, factors, order=order, mode="nearest", grid_mode=False)
    assert out.shape == tuple(shape), (out.shape, shape)
    return out


def _crop_box(fg, margin):
    """[(start, stop)] per axis: bounding box of `fg` widened by `margin` x extent (>= 1)."""
    box = []
    for ax in range(fg.ndim):
        other = tuple(a for a in range(fg.ndim) if a != ax)
        hit = np.flatnonzero(fg.any(axis=other))
        pad = max(1, int(round(margin * (hit[-1] - hit[0] + 1))))
        box.append((max(0, int(hit[0]) - pad), min(fg.shape[ax], int(hit[-1]) + 1 + pad)))
    return box


@dataclasses.dataclass(frozen=True)
class SliceGeometry:
    """How a stack of slices was cut from a volume; enough to put it back.

    Attributes:
        affine: the ORIGINAL volume's 4x4 voxel-to-world matrix.
        shape: the ORIGINAL volume's 3D shape.
        axis: sliced axis of the canonical RAS volume (0 = sagittal, 1 = coronal, 2 = axial).
        crop: [(start, stop)] per RAS axis, the cropped block of the RAS volume.
        n_resampled: number of slices along `axis` after resampling the crop.
        fit: in-plane `SquareFit` from the crop (rows, cols) to `size x size`.
        slice_indices: indices (into the `n_resampled` resampled slices) of the kept slices.
        spacing: slice spacing (mm) along `axis` after resampling.
    """

    affine: np.ndarray
    shape: tuple
    axis: int
    crop: tuple
    n_resampled: int
    fit: SquareFit
    slice_indices: tuple
    spacing: float

    @property
    def size(self):
        return self.fit.size

    def to_dict(self):
        return {
            "affine": np.asarray(self.affine).tolist(),
            "shape": list(self.shape),
            "axis": self.axis,
            "crop": [list(c) for c in self.crop],
            "n_resampled": self.n_resampled,
            "fit": self.fit.to_dict(),
            "slice_indices": list(self.slice_indices),
            "spacing": self.spacing,
        }

    @classmethod
    def from_dict(cls, d):
        return cls(
            affine=np.asarray(d["affine"], dtype=np.float64),
            shape=tuple(int(s) for s in d["shape"]),
            axis=int(d["axis"]),
            crop=tuple(tuple(int(v) for v in c) for c in d["crop"]),
            n_resampled=int(d["n_resampled"]),
            fit=SquareFit.from_dict(d["fit"]),
            slice_indices=tuple(int(i) for i in d["slice_indices"]),
            spacing=float(d["spacing"]),
        )


def volume_to_slices(volume, axis=2, size=128, *, mask=None, spacing=None, min_foreground=0.25,
                     margin=0.05, percentiles=DEFAULT_PERCENTILES, order=1):
    """Cuts a volume into normalised square slices.

    Args:
        volume: a `Volume` or a path to a `.nii`/`.nii.gz` file.
        axis: RAS axis to slice along (2 = axial).
        size: output slices are `size x size`.
        mask: optional brain mask (bool array in the volume's grid, or a NIfTI path);
            outside it the slices are -1.
        spacing: slice spacing in mm along `axis` after resampling (default: the finest
            voxel spacing of the volume, i.e. isotropic sampling).
        min_foreground: keep slices whose foreground area >= this x the largest slice's
            (0 keeps every slice of the cropped block).
        margin: crop margin around the foreground, as a fraction of its extent.
        percentiles: foreground intensity percentiles mapped to -1 and 1.
        order: spline order for resampling (1 = linear).

    Returns:
        (slices float32 `[N, size, size, 1]` in [-1, 1], `SliceGeometry`).
    """
    if not isinstance(volume, Volume):
        volume = load_volume(volume)
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis!r}")
    given_mask = mask is not None
    if isinstance(mask, (str, bytes)) or hasattr(mask, "__fspath__"):
        mask = load_mask(mask, like=volume)
    elif given_mask:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != volume.shape:
            raise DataError(f"mask shape {mask.shape} does not match volume shape {volume.shape}",
                            volume.path)

    data, ras_affine = reorient_to_ras(volume.data, volume.affine)
    fg = foreground_mask(data, None if mask is None else _reorient_like(mask, volume.affine))
    if not fg.any():
        raise DataError("no foreground found in the volume", volume.path)
    crop = _crop_box(fg, margin)
    sl = tuple(slice(a, b) for a, b in crop)
    block = normalize_intensity(data[sl], fg[sl], percentiles, path=volume.path,
                                mask_background=given_mask)
    fg_block = fg[sl]

    ras_spacing = np.linalg.norm(ras_affine[:3, :3], axis=0)
    target = float(spacing) if spacing else float(ras_spacing.min())
    in_plane = [a for a in range(3) if a != axis]
    block = np.moveaxis(block, axis, 0)
    fg_block = np.moveaxis(fg_block, axis, 0)
    n_a = block.shape[0]
    n_resampled = max(1, int(round(n_a * ras_spacing[axis] / target)))
    fit = SquareFit.plan(block.shape[1:], size, pixel_size=ras_spacing[in_plane])
    shape = (n_resampled,) + fit.resized
    block = _zoom_to(block, shape, order)
    fg_area = (_zoom_to(fg_block.astype(np.float32), shape, 1) >= 0.5).sum(axis=(1, 2))

    keep = np.flatnonzero((fg_area >= min_foreground * fg_area.max()) &
                          ((fg_area > 0) | (min_foreground <= 0)))
    slices = np.full((len(keep), size, size, 1), BACKGROUND, dtype=np.float32)
    (top, left), (rh, rw) = fit.offset, fit.resized
    slices[:, top:top + rh, left:left + rw, 0] = np.clip(block[keep], -1.0, 1.0)
    geometry = SliceGeometry(
        affine=np.array(volume.affine, dtype=np.float64), shape=tuple(volume.shape), axis=axis,
        crop=tuple(crop), n_resampled=n_resampled, fit=fit,
        slice_indices=tuple(int(i) for i in keep),
        spacing=float(ras_spacing[axis] * n_a / n_resampled),
    )
    return slices, geometry


def _reorient_like(array, affine):
    return nib.orientations.apply_orientation(array, _to_ras_transform(affine))


def slices_to_volume(slices, geometry, *, fill=BACKGROUND, order=1):
    """Puts a stack of slices back into the original voxel grid of `geometry`.

    Args:
        slices: `[N, size, size]` or `[N, size, size, 1]`, N = len(geometry.slice_indices),
            in the order `volume_to_slices` returned them (e.g. model outputs).
        geometry: the `SliceGeometry` from `volume_to_slices` (or `SliceGeometry.from_dict`).
        fill: value for voxels no slice covers.

    Returns:
        float32 array of shape `geometry.shape`, aligned with `geometry.affine`.
    """
    slices = np.asarray(slices, dtype=np.float32)
    if slices.ndim == 4 and slices.shape[-1] == 1:
        slices = slices[..., 0]
    n = len(geometry.slice_indices)
    if slices.ndim != 3 or slices.shape != (n, geometry.size, geometry.size):
        raise ValueError(
            f"expected {n} slices of {geometry.size}x{geometry.size}, got shape {slices.shape}")
    fit = geometry.fit
    (top, left), (rh, rw) = fit.offset, fit.resized
    block = np.full((geometry.n_resampled, rh, rw), fill, dtype=np.float32)
    block[list(geometry.slice_indices)] = slices[:, top:top + rh, left:left + rw]
    crop_shape = tuple(b - a for a, b in geometry.crop)
    moved_shape = (crop_shape[geometry.axis],) + fit.in_shape
    block = np.moveaxis(_zoom_to(block, moved_shape, order), 0, geometry.axis)

    transform = _to_ras_transform(geometry.affine)
    out = np.full(_ras_shape(geometry.shape, transform), fill, dtype=np.float32)
    out[tuple(slice(a, b) for a, b in geometry.crop)] = block
    out = _from_ras(out, geometry.affine)
    assert out.shape == tuple(geometry.shape), (out.shape, geometry.shape)
    return np.ascontiguousarray(out, dtype=np.float32)
