"""Reading image sets for evaluation and MOS pages: `.npy`, PNG/JPEG files or folders, NIfTI.

Every loader returns `float32 [N, size, size, 1]` in `[-1, 1]` (background -1) or raises
`DataError` naming the file and the problem. Accepted inputs:

- `.npy`: float `[N, H, W(, 1)]` in `[-1, 1]`, or uint8 (grey level g -> g / 127.5 - 1);
- a PNG/JPEG file or a folder of them (sorted by name, not recursive), same 8-bit mapping;
- a prepared dataset folder of `usmr prepare` (`DIR` or `DIR/<modality>`, the `split` slices,
  `usmr_tf.data.cache.load_prepared`);
- a NIfTI volume (`.nii`, `.nii.gz`): robust percentile normalisation of the Otsu foreground
  (`usmr_tf.data.intensity`), then the slices along the last axis whose foreground covers at
  least `min_foreground` of the slice.

Slices whose size differs from `size` are fitted into the square frame with the aspect ratio
kept (`usmr_tf.data.square.fit_to_square`).
"""

import pathlib

import numpy as np

from usmr_tf.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
NIFTI_SUFFIXES = (".nii", ".nii.gz")


def grey_to_unit(grey):
    """uint8 grey level g -> g / 127.5 - 1 (0 -> -1 background, 255 -> +1)."""
    return np.asarray(grey, dtype=np.float32) / 127.5 - 1.0


def unit_to_grey(image):
    """Inverse of `grey_to_unit` for `[-1, 1]` images (clipped, rounded to uint8)."""
    return np.clip(np.rint((np.asarray(image, np.float64) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def _read_png(path):
    from usmr_tf.data.images import load_image

    grey = load_image(path)  # raw grey levels; DataError for missing / corrupt files
    if grey.max() > 255:
        raise DataError(f"grey levels up to {grey.max():g}: expected an 8-bit image", path)
    return grey_to_unit(grey)


def _read_npy(path):
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"unreadable .npy array ({exc})", path) from exc
    if array.dtype == np.uint8:
        array = grey_to_unit(array)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise DataError(f"expected a numeric array, got dtype {array.dtype}", path)
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    elif array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise DataError(f"expected shape [N, H, W] or [N, H, W, 1], got {array.shape}", path)
    if array.size == 0:
        raise DataError(f"empty array of shape {array.shape}", path)
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise DataError("contains NaN or Inf values", path)
    if array.min() < -1.01 or array.max() > 1.01:
        raise DataError(
            f"values in [{array.min():.3g}, {array.max():.3g}]: expected images in [-1, 1] "
            "(or uint8 grey levels)", path)
    return list(np.clip(array, -1.0, 1.0))


def _read_nifti(path, min_foreground):
    from usmr_tf.data import intensity, nifti

    volume = nifti.load_volume(path)
    foreground = intensity.foreground_mask(volume.data)
    data = intensity.normalize_intensity(volume.data, foreground, path=path)
    area = foreground.reshape(-1, foreground.shape[-1]).mean(axis=0)
    keep = np.flatnonzero(area >= min_foreground)
    if keep.size == 0:
        raise DataError(f"no slice has at least {min_foreground:.0%} foreground", path)
    return [data[:, :, k] for k in keep]


def _fit(slices, size, path):
    from usmr_tf.data.square import fit_to_square

    out = []
    for image in slices:
        if image.shape != (size, size):
            image = fit_to_square(image[None], size)[0][0]
        out.append(image)
    return np.stack(out)[..., None].astype(np.float32)


def _suffix(path):
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _is_prepared(path, modality):
    return any((folder / f"{split}.npy").is_file() for folder in (path, path / str(modality))
               for split in ("train", "test"))


def load_image_set(path, size, min_foreground=0.05, limit=None, modality=None, split="test"):
    """Loads `path` as `float32 [N, size, size, 1]` in `[-1, 1]` (see the module docstring)."""
    path = pathlib.Path(path)
    if not path.exists():
        raise DataError("no such file or folder", path)
    if path.is_dir() and _is_prepared(path, modality):
        from usmr_tf.data.cache import load_prepared

        images, _ = load_prepared(
            path, split, modality=None if (path / f"{split}.npy").is_file() else modality)
        slices = list(images[..., 0])
    elif path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and _suffix(p) in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"folder holds no {'/'.join(IMAGE_SUFFIXES)} images", path)
        if limit:
            files = files[:limit]
        slices = [_read_png(p) for p in files]
    elif _suffix(path) in IMAGE_SUFFIXES:
        slices = [_read_png(path)]
    elif _suffix(path) == ".npy":
        slices = _read_npy(path)
    elif _suffix(path) in NIFTI_SUFFIXES:
        slices = _read_nifti(path, min_foreground)
    else:
        raise DataError(
            "unsupported input: expected .npy, .png/.jpg, a folder of images, or .nii/.nii.gz", path
        )
    if limit:
        slices = slices[:limit]
    return _fit(slices, int(size), path)
