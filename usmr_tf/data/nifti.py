"""Reading and writing NIfTI volumes with clear errors for bad files.

`load_volume` returns a `Volume` (float32 3D data + affine) or raises
`usmr_tf.errors.DataError` naming the file and the problem: unreadable, corrupt or
truncated file, wrong rank, NaN/Inf voxels, constant volume.
"""

import dataclasses
import pathlib

import nibabel as nib
import numpy as np

from usmr_tf.atomic import atomic_path
from usmr_tf.errors import DataError

NIFTI_SUFFIXES = (".nii", ".nii.gz")


@dataclasses.dataclass
class Volume:
    """A 3D scalar volume: `data[i, j, k]` sits at world position `affine @ [i, j, k, 1]`."""

    data: np.ndarray  # float32, rank 3
    affine: np.ndarray  # float64, 4x4 voxel -> world (mm, RAS+)
    header: object = None  # the nibabel header it was read with (or None)
    path: str = None

    @property
    def spacing(self):
        """Voxel size in mm along each array axis (column norms of the affine)."""
        return tuple(float(s) for s in np.linalg.norm(self.affine[:3, :3], axis=0))

    @property
    def shape(self):
        return tuple(self.data.shape)


def is_nifti(path):
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def _read(path):
    path = pathlib.Path(path)
    if not path.exists():
        raise DataError("no such file", path)
    if path.is_dir():
        raise DataError("expected a NIfTI file, found a folder", path)
    if not is_nifti(path):
        raise DataError("not a NIfTI file (expected .nii or .nii.gz)", path)
    try:
        image = nib.load(str(path))
        data = np.asarray(image.get_fdata(dtype=np.float32))
    except Exception as exc:  # nibabel raises many types for corrupt/truncated files
        raise DataError(
            f"cannot read NIfTI (corrupt or truncated file?): {type(exc).__name__}: {exc}", path
        ) from None
    return image, data


def _as_rank3(data, path):
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise DataError(f"expected a 3D volume, got shape {tuple(data.shape)} (rank {data.ndim})",
                        path)
    if min(data.shape) < 1:
        raise DataError(f"empty volume of shape {tuple(data.shape)}", path)
    return data


def load_volume(path):
    """Reads a 3D `.nii`/`.nii.gz` volume as float32, checking it is usable.

    A 4D volume with a singleton 4th dimension is squeezed to 3D.

    Raises:
        DataError: naming the file, for an unreadable/corrupt/truncated file, a rank other
            than 3, NaN or Inf voxels, or a constant volume.
    """
    image, data = _read(path)
    data = _as_rank3(data, path)
    finite = np.isfinite(data)
    if not finite.all():
        bad = int(data.size - np.count_nonzero(finite))
        raise DataError(f"{bad} voxel(s) are NaN or Inf", path)
    if float(data.max()) == float(data.min()):
        raise DataError(f"constant volume (every voxel is {float(data.min()):g})", path)
    affine = np.asarray(image.affine, dtype=np.float64)
    if not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise DataError("the affine (voxel-to-world matrix) is singular or not finite", path)
    return Volume(data=data, affine=affine, header=image.header, path=str(path))


def load_mask(path, like=None):
    """Reads a binary mask (voxels > 0.5) and, given `like` (a Volume), checks it matches it.

    Raises:
        DataError: naming the mask file for unreadable files, wrong rank, a shape different
            from `like`, or an empty mask.
    """
    _, data = _read(path)
    data = _as_rank3(data, path)
    if not np.isfinite(data).all():
        raise DataError("mask has NaN or Inf voxels", path)
    mask = data > 0.5
    if like is not None and mask.shape != like.shape:
        raise DataError(
            f"mask shape {mask.shape} does not match volume {like.path} shape {like.shape}", path
        )
    if not mask.any():
        raise DataError("mask is empty (no voxel > 0.5)", path)
    return mask


def save_volume(data, affine, path, header=None):
    """Writes `data` with `affine` as NIfTI atomically (temp file, then rename)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = nib.Nifti1Image(np.asarray(data, dtype=np.float32), np.asarray(affine, np.float64))
    if header is not None:
        image.header.set_xyzt_units(*header.get_xyzt_units())
    with atomic_path(path) as tmp:
        nib.save(image, tmp)
    return path
