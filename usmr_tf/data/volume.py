"""Volume -> 2D slices and back, keeping the geometry.

`volume_to_slices` does, in order:

1. reorient to canonical RAS (axis permutation/flip only: exact, no interpolation);
2. find the foreground (the given brain mask, else Otsu's threshold - with
   `foreground="largest"` only its largest connected part after a one-voxel opening,
   and the rest set to background); optionally rotate
   the volume about the slicing axis (`rotate`: degrees, or "auto" to turn the brain's
   longer in-plane principal axis horizontal); crop to the foreground's bounding box plus
   a margin;
3. normalise intensities: foreground percentiles -> [-1, 1] (outside a given mask: -1);
4. resample with `scipy.ndimage.zoom` (linear): the slicing axis to the target spacing
   and the in-plane axes, isotropically, so the longer side spans `size` pixels (aspect
   ratio kept) - or, with `fill`, so the foreground's longer in-plane side spans
   `fill * size` pixels. Resampling to isotropic `spacing` and the in-plane resize are
   fused into a single interpolation;
5. keep the slices whose foreground area is at least `min_foreground` times the largest
   one (and, with `band`, whose relative position within the foreground's extent along
   the slicing axis lies in the band), and pad them to `size x size` with -1.

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

FOREGROUNDS = ("otsu", "largest")

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


def _rotation_matrix(degrees):
    """(row, col) matrix turning content counter-clockwise on screen (rows point down)."""
    a = np.radians(degrees)
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


def principal_angle(fg, axis, spacing):
    """Rotation (degrees, in (-90, 90]) that turns the foreground's longer principal axis
    in the plane perpendicular to `axis` horizontal (along the slice columns)."""
    in_plane = [a for a in range(3) if a != axis]
    coords = np.stack(np.nonzero(fg))[in_plane].astype(np.float64)
    coords *= np.asarray(spacing, dtype=np.float64)[in_plane][:, None]
    if coords.shape[1] < 3:
        return 0.0
    _, vectors = np.linalg.eigh(np.cov(coords))
    v_row, v_col = vectors[:, -1]
    angle = float(np.degrees(np.arctan2(v_row, v_col)))
    if angle > 90.0:
        angle -= 180.0
    elif angle <= -90.0:
        angle += 180.0
    return angle


def _rotate_in_plane(block, degrees, pixel_size, *, inverse=False, shape=None, order=1,
                     cval=0.0):
    """Rotates `[n, h, w]` about its centre in mm (pixel sizes may differ); one interpolation.

    Forward: returns a larger `[n, H, W]` holding the whole rotated block. `inverse=True`
    undoes a forward rotation of a block of in-plane `shape` (the original `(h, w)`).
    """
    px = np.asarray(pixel_size, dtype=np.float64)
    rot = _rotation_matrix(degrees)
    in_shape = np.array(block.shape[1:], dtype=np.float64)
    if inverse:
        out_shape = np.array(shape, dtype=np.float64)
        forward = np.diag(1 / px) @ rot @ np.diag(px)  # maps original -> rotated indices
        matrix = forward
    else:
        half = np.abs(rot) @ ((in_shape - 1) / 2 * px)
        out_shape = np.floor(2 * half / px + 1e-6) + 1
        matrix = np.diag(1 / px) @ rot.T @ np.diag(px)  # rotated -> original indices
    c_in, c_out = (in_shape - 1) / 2, (out_shape - 1) / 2
    full = np.eye(3)
    full[1:, 1:] = matrix
    offset = np.concatenate([[0.0], c_in - matrix @ c_out])
    out_shape = (block.shape[0],) + tuple(int(v) for v in out_shape)
    return ndimage.affine_transform(block, full, offset=offset, output_shape=out_shape,
                                    order=order, mode="constant", cval=cval)


def largest_part(fg, opening=1):
    """The largest (6-)connected part of `fg` after `opening` iterations of a binary
    opening (`fg` itself when the opening leaves nothing)."""
    opened = ndimage.binary_opening(fg, iterations=opening) if opening else fg
    labels, n = ndimage.label(opened)
    if n == 0:
        return fg
    sizes = np.bincount(labels.ravel())[1:]
    return labels == int(np.argmax(sizes)) + 1


def drop_detached_parts(slices, threshold=-0.8, opening=1):
    """Each slice without the parts detached from its largest part: for one source whose
    brain mask keeps scraps (the MIAL super-resolution volume keeps a bar of extra-cranial
    tissue above the head in its trans-thalamic slices), not for MR in general: it removes
    any detached part, anatomy included (the cerebellum where an oblique plane cuts it apart
    from the cerebrum: 55 of data v3's 507 training MR slices at 128 px would lose up to 14 %).

    `slices` float [N, H, W, 1] or [N, H, W] in [-1, 1], background exactly -1 (the prepared
    slices' convention). Per slice: the pixels above `threshold` (-0.8: the dim gap between
    the MIAL bar and the head stays below it) after a binary `opening` (pixels, 4-connected)
    form parts; the largest is the head. Every foreground pixel (> -1) that is connected to
    another part without coming within `opening + 2` px of the head is set to -1; the head,
    its dim rim and a slice with one part stay as they are. Returns (a float32 copy, the
    fraction of each slice's foreground set to background). ValueError for another shape."""
    x = np.array(slices, dtype=np.float32, copy=True)
    if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[-1] != 1):
        raise ValueError(f"slices must be [N, H, W, 1] or [N, H, W], got shape {x.shape}")
    planes = x[..., 0] if x.ndim == 4 else x
    structure = ndimage.generate_binary_structure(2, 1)
    removed = np.zeros(len(planes))
    for i, plane in enumerate(planes):
        fg = plane > BACKGROUND
        opened = ndimage.binary_opening(plane > threshold, structure, iterations=opening)
        head = largest_part(opened, opening=0)
        others = opened & ~head
        if not others.any():
            continue
        near_head = ndimage.binary_dilation(head, structure, iterations=opening + 2)
        seeds = ndimage.binary_dilation(others, structure,
                                        iterations=opening + 2) & ~near_head & fg
        scraps = ndimage.binary_propagation(seeds, structure, mask=fg & ~near_head)
        removed[i] = scraps.sum() / max(1, fg.sum())
        plane[scraps] = BACKGROUND
    return x, removed


def _band_keep(fg_area, band):
    """Slices whose relative position within the foreground extent lies in `band`."""
    if band is None:
        return np.ones(len(fg_area), dtype=bool)
    hit = np.flatnonzero(fg_area > 0)
    position = (np.arange(len(fg_area)) - hit[0]) / max(1, hit[-1] - hit[0])
    return (position >= band[0] - 1e-9) & (position <= band[1] + 1e-9)


def _check_band(band):
    if band is None:
        return None
    try:
        lo, hi = (float(v) for v in band)
    except (TypeError, ValueError):
        raise ValueError(f"band must be two numbers [low, high], got {band!r}") from None
    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(f"band must satisfy 0 <= low < high <= 1, got {band!r}")
    return lo, hi


def _fill_crop(crop, fg, axis, spacing, size, fill):
    """Scale (output pixels per mm) putting the foreground's longer in-plane side at
    `fill * size` pixels, and `crop` with its in-plane margin trimmed where the scaled
    crop would not fit into the frame."""
    in_plane = [a for a in range(3) if a != axis]
    hits = {}
    for ax in in_plane:
        other = tuple(a for a in range(3) if a != ax)
        hit = np.flatnonzero(fg.any(axis=other))
        hits[ax] = (int(hit[0]), int(hit[-1]) + 1)
    extent = max((hits[ax][1] - hits[ax][0]) * spacing[ax] for ax in in_plane)
    scale = fill * size / extent
    crop = list(crop)
    for ax in in_plane:
        start, stop = crop[ax]
        longest = int(np.floor(size / (scale * spacing[ax]) + 1e-6))
        if stop - start > longest:
            centre = sum(hits[ax]) / 2.0
            start = int(np.clip(round(centre - longest / 2.0), 0, fg.shape[ax] - longest))
            crop[ax] = (start, start + longest)
    return scale, crop


def _scaled_fit(in_shape, size, scale, pixel_size):
    """`SquareFit` resizing `in_shape` by `scale` output pixels per mm, centred."""
    resized = tuple(int(min(size, max(1, round(n * p * scale))))
                    for n, p in zip(in_shape, pixel_size))
    offset = tuple((size - r) // 2 for r in resized)
    return SquareFit(in_shape=tuple(int(n) for n in in_shape), resized=resized, offset=offset,
                     size=int(size))


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
        rotation: in-plane rotation (degrees, counter-clockwise as the slices are shown,
            row 0 at the top) applied to the RAS volume before cropping; 0 = none.
        rotated_shape: shape of the RAS volume after that rotation (None: not rotated).
        tilt: out-of-plane tilt (degrees about the RAS left-right axis) applied to the RAS
            volume before everything else; slices of a tilted volume cannot be put back
            into the original grid (`slices_to_volume` refuses them).
    """

    affine: np.ndarray
    shape: tuple
    axis: int
    crop: tuple
    n_resampled: int
    fit: SquareFit
    slice_indices: tuple
    spacing: float
    rotation: float = 0.0
    rotated_shape: tuple = None
    tilt: float = 0.0

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
            "rotation": self.rotation,
            "rotated_shape": None if self.rotated_shape is None else list(self.rotated_shape),
            "tilt": self.tilt,
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
            rotation=float(d.get("rotation", 0.0)),
            rotated_shape=(None if d.get("rotated_shape") is None
                           else tuple(int(v) for v in d["rotated_shape"])),
            tilt=float(d.get("tilt", 0.0)),
        )


def volume_to_slices(volume, axis=2, size=128, *, mask=None, spacing=None, min_foreground=0.25,
                     margin=0.05, percentiles=DEFAULT_PERCENTILES, order=1, band=None, fill=None,
                     rotate=0.0, foreground="otsu", tilt=0.0):
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
        band: optional `(low, high)` in [0, 1]: keep only slices whose relative position
            within the foreground's extent along `axis` lies in the band (0 = its first
            slice, i.e. the lowest RAS coordinate: inferior for axial slices).
        fill: optional fraction of `size` that the foreground's longer in-plane side
            spans (the crop margin is trimmed if it would not fit); default: the crop
            (foreground plus margin) fills the frame.
        rotate: in-plane rotation in degrees (counter-clockwise as the slices are shown),
            or "auto": turn the foreground's longer in-plane principal axis horizontal
            (e.g. the occipito-frontal axis of a tilted fetal head). Costs one more
            interpolation; 0 (default) leaves the grid untouched.
        foreground: without `mask`: "otsu" (default) - every voxel above Otsu's
            threshold; "largest" - of those, the largest connected part after a binary
            opening (one voxel), which drops detached non-brain remnants (e.g. scalp
            around a template brain); voxels outside it become -1 as with a mask.
            Ignored when `mask` is given.
        tilt: out-of-plane tilt in degrees: the RAS volume is first turned about its
            left-right (x) axis, so axial or coronal slices become oblique planes (more
            planes of the same anatomy per volume, as US sweeps cut them). 0 (default):
            untouched. Needs `axis` 1 or 2; such slices cannot be put back
            (`slices_to_volume`).

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

    if foreground not in FOREGROUNDS:
        raise ValueError(f"foreground must be one of {FOREGROUNDS}, got {foreground!r}")
    band = _check_band(band)
    if fill is not None and not 0.0 < float(fill) <= 1.0:
        raise ValueError(f"fill must be in (0, 1], got {fill!r}")

    data, ras_affine = reorient_to_ras(volume.data, volume.affine)
    fg = foreground_mask(data, None if mask is None else _reorient_like(mask, volume.affine))
    if not fg.any():
        raise DataError("no foreground found in the volume", volume.path)
    if mask is None and foreground == "largest":
        fg = largest_part(fg)
        given_mask = True  # background outside the kept part, as with a mask
    ras_spacing = np.linalg.norm(ras_affine[:3, :3], axis=0)
    in_plane = [a for a in range(3) if a != axis]
    tilt = float(tilt or 0.0)
    if tilt != 0.0:
        if axis == 0:
            raise ValueError("tilt turns the volume about the x axis: slice along axis 1 or 2")
        # [x, y, z] block turned in its (y, z) plane about its centre, in mm.
        data = _rotate_in_plane(data, tilt, ras_spacing[1:], cval=float(data.min()))
        fg = _rotate_in_plane(fg.astype(np.float32), tilt, ras_spacing[1:]) >= 0.5

    if isinstance(rotate, str):
        if rotate != "auto":
            raise ValueError(f"rotate must be a number of degrees or 'auto', got {rotate!r}")
        rotation = principal_angle(fg, axis, ras_spacing)
    else:
        rotation = float(rotate or 0.0)
    rotated_shape = None
    if rotation != 0.0:
        px = ras_spacing[in_plane]
        data = np.moveaxis(_rotate_in_plane(np.moveaxis(data, axis, 0), rotation, px,
                                            cval=float(data.min())), 0, axis)
        fg = np.moveaxis(_rotate_in_plane(np.moveaxis(fg.astype(np.float32), axis, 0),
                                          rotation, px), 0, axis) >= 0.5
        rotated_shape = tuple(int(n) for n in data.shape)

    crop = _crop_box(fg, margin)
    if fill is not None:
        scale, crop = _fill_crop(crop, fg, axis, ras_spacing, size, float(fill))
    sl = tuple(slice(a, b) for a, b in crop)
    block = normalize_intensity(data[sl], fg[sl], percentiles, path=volume.path,
                                mask_background=given_mask)
    fg_block = fg[sl]

    target = float(spacing) if spacing else float(ras_spacing.min())
    block = np.moveaxis(block, axis, 0)
    fg_block = np.moveaxis(fg_block, axis, 0)
    n_a = block.shape[0]
    n_resampled = max(1, int(round(n_a * ras_spacing[axis] / target)))
    if fill is None:
        fit = SquareFit.plan(block.shape[1:], size, pixel_size=ras_spacing[in_plane])
    else:
        fit = _scaled_fit(block.shape[1:], size, scale, ras_spacing[in_plane])
    shape = (n_resampled,) + fit.resized
    block = _zoom_to(block, shape, order)
    fg_area = (_zoom_to(fg_block.astype(np.float32), shape, 1) >= 0.5).sum(axis=(1, 2))

    keep = np.flatnonzero((fg_area >= min_foreground * fg_area.max()) &
                          ((fg_area > 0) | (min_foreground <= 0)) & _band_keep(fg_area, band))
    slices = np.full((len(keep), size, size, 1), BACKGROUND, dtype=np.float32)
    (top, left), (rh, rw) = fit.offset, fit.resized
    slices[:, top:top + rh, left:left + rw, 0] = np.clip(block[keep], -1.0, 1.0)
    geometry = SliceGeometry(
        affine=np.array(volume.affine, dtype=np.float64), shape=tuple(volume.shape), axis=axis,
        crop=tuple(crop), n_resampled=n_resampled, fit=fit,
        slice_indices=tuple(int(i) for i in keep),
        spacing=float(ras_spacing[axis] * n_a / n_resampled),
        rotation=rotation, rotated_shape=rotated_shape, tilt=tilt,
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
    if geometry.tilt != 0.0:
        raise ValueError(f"slices of a tilted volume (tilt {geometry.tilt:g} degrees) cannot be "
                         "put back into the original grid")
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
    ras_shape = _ras_shape(geometry.shape, transform)
    out = np.full(geometry.rotated_shape or ras_shape, fill, dtype=np.float32)
    out[tuple(slice(a, b) for a, b in geometry.crop)] = block
    if geometry.rotation != 0.0:
        axis = geometry.axis
        in_plane = [a for a in range(3) if a != axis]
        ras_affine = geometry.affine @ nib.orientations.inv_ornt_aff(transform, geometry.shape)
        px = np.linalg.norm(ras_affine[:3, :3], axis=0)[in_plane]
        out = np.moveaxis(_rotate_in_plane(
            np.moveaxis(out, axis, 0), geometry.rotation, px, inverse=True,
            shape=[ras_shape[a] for a in in_plane], order=order, cval=fill), 0, axis)
    out = _from_ras(out, geometry.affine)
    assert out.shape == tuple(geometry.shape), (out.shape, geometry.shape)
    return np.ascontiguousarray(out, dtype=np.float32)
