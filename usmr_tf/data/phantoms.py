"""Paired fetal-head phantoms: one random label map rendered as US and as T2-like MR.

The real US and MR data are unpaired, so nothing can be scored against ground
truth. Phantoms fill that gap: each is a random axial (trans-thalamic-like) slice
of a fetal head (`phantom_anatomy`), rendered as B-mode ultrasound
(`phantom_ultrasound`) and as T2-weighted-like MR (`phantom_mr`) with exactly the
same geometry. Images are float32 `[N, H, W, 1]` in [-1, 1] with background -1
(docs/architecture.md). Training must use them unpaired (`unpaired_phantoms`);
the paired MR is for metrics only. See docs/phantoms.md.

Example:

>>> from usmr_tf.data.phantoms import generate_phantoms, LABELS
>>> batch = generate_phantoms(4, size=64, seed=1)
>>> batch["us"].shape, batch["mr"].dtype, int(batch["labels"].max()) <= max(LABELS.values())
((4, 64, 64, 1), dtype('float32'), True)
"""

import math
import numbers
import pathlib

import numpy as np

from usmr_tf.atomic import atomic_path
from usmr_tf.data.phantom_anatomy import (
    LABELS,
    anatomy_along_z,
    check_count,
    check_size,
    rasterise_labels,
    sample_anatomy,
)
from usmr_tf.data.phantom_mr import render_mr, sample_mr
from usmr_tf.data.phantom_ultrasound import render_ultrasound, sample_ultrasound

__all__ = [
    "LABELS", "generate_phantoms", "phantom_affine", "stack_slices", "unpaired_phantoms",
    "write_phantom_volumes",
]

_CHUNK_PIXELS = 2**19  # pixels rendered at once: chunks of 2 MB float32 arrays stay in cache


def _take(params, index):
    return {k: v[index] for k, v in params.items()}


def _render(anatomy, us_settings, mr_settings, size, rng):
    """Renders a batch of parameter dicts in chunks; returns the output dict."""
    n = len(anatomy["cx"])
    out = {
        "us": np.empty((n, size, size, 1), np.float32),
        "mr": np.empty((n, size, size, 1), np.float32),
        "labels": np.empty((n, size, size), np.uint8),
    }
    chunk = max(1, _CHUNK_PIXELS // (size * size))
    for start in range(0, n, chunk):
        part = slice(start, min(start + chunk, n))
        anat = _take(anatomy, part)
        labels = rasterise_labels(anat, size)
        out["labels"][part] = labels
        out["us"][part, ..., 0] = render_ultrasound(labels, anat, _take(us_settings, part), rng)
        out["mr"][part, ..., 0] = render_mr(labels, _take(mr_settings, part), rng)
    out["head_mask"] = out["labels"] > 0
    return out


def _generate(n, size, rng):
    return _render(sample_anatomy(rng, n), sample_ultrasound(rng, n), sample_mr(rng, n), size, rng)


def generate_phantoms(n, size=128, seed=0):
    """Generates `n` paired US / MR phantom slices.

    Args:
        n: number of slices (positive int).
        size: height and width in pixels (int >= 32).
        seed: seed of `numpy.random.default_rng`; equal seeds give equal outputs.

    Returns:
        dict with `us` and `mr` (float32 `[n, size, size, 1]` in [-1, 1], -1 outside
        the US fan and outside the head in MR), `labels` (uint8 `[n, size, size]`,
        values of `LABELS`) and `head_mask` (bool `[n, size, size]`, `labels > 0`).
        `us[i]` and `mr[i]` show the same anatomy.
    """
    n, size = check_count(n), check_size(size)
    return _generate(n, size, np.random.default_rng(seed))


def unpaired_phantoms(n_us, n_mr, size=128, seed=0):
    """US and MR phantoms from *different* anatomies, plus the ground-truth MR of the US.

    Returns:
        `(us, mr, mr_paired)`: `us` `[n_us, size, size, 1]`, `mr` `[n_mr, ...]`
        rendered from phantoms independent of those of `us`, and `mr_paired`
        `[n_us, ...]`, the MR rendering of the anatomy of `us[i]` (for metrics
        only; training uses `(us, mr)`, as with the real unpaired data).
    """
    n_us, n_mr = check_count(n_us, "n_us"), check_count(n_mr, "n_mr")
    size = check_size(size)
    paired_seed, mr_seed = np.random.SeedSequence(seed).spawn(2)
    paired = _generate(n_us, size, np.random.default_rng(paired_seed))
    mr = _generate(n_mr, size, np.random.default_rng(mr_seed))["mr"]
    return paired["us"], mr, paired["mr"]


def phantom_affine(shape, spacing):
    """RAS affine with isotropic `spacing` (mm) that puts the volume centre at the origin."""
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = -spacing * (np.asarray(shape[:3], np.float64) - 1.0) / 2.0
    return affine


def stack_slices(slices):
    """Stacks 2D slices [Z, H, W] into a volume [H, W, Z]: `volume[:, :, k] == slices[k]`.

    With the RAS affine of `phantom_affine`, image rows run along R and columns along
    A, the convention of `usmr_tf.data.volume` for axial slices (axis 2), so
    `volume_to_slices` gives back slices oriented like the 2D phantoms.
    """
    return np.ascontiguousarray(np.moveaxis(np.asarray(slices), 0, -1))


def _save_nifti(data, affine, path):
    """Writes a NIfTI file atomically (temporary file in the same folder, then rename)."""
    import nibabel as nib

    image = nib.Nifti1Image(data, affine)
    image.header.set_xyzt_units("mm")
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    with atomic_path(path) as tmp:
        nib.save(image, tmp)


def write_phantom_volumes(out_dir, n_subjects, size=128, n_slices=64, seed=0, spacing=0.8):
    """Writes 3D phantom volumes (US, MR and labels) as NIfTI files.

    Each subject is a slab of `n_slices` axial slices whose anatomy varies smoothly
    along z (the head section shrinks away from the centre, thalami and cavum septi
    pellucidi appear near the central, trans-thalamic slice, ventricles lengthen
    superiorly); slice k of the US, MR and label volumes shares its geometry.
    Volumes are `[size, size, n_slices]`, `volume[:, :, k]` being slice k laid out as
    by `generate_phantoms` (see `stack_slices`), with an isotropic `spacing` (mm) RAS
    affine centred on the origin (`phantom_affine`). Intensities look like raw scanner data: US as
    uint8 0..255 (0 outside the fan), MR as int16 0..1000 (0 outside the head),
    labels as uint8 (`LABELS`). Each file is written atomically (temporary
    file, then rename), so a failure never leaves a half-written volume.

    Returns:
        dict `{"us": [...], "mr": [...], "labels": [...]}` of `pathlib.Path`, one per
        subject, in `out_dir/us/phantom_XXX.nii.gz`, `out_dir/mr/...`, `out_dir/labels/...`.
    """
    n_subjects = check_count(n_subjects, "n_subjects")
    n_slices = check_count(n_slices, "n_slices")
    size = check_size(size)
    if (isinstance(spacing, bool) or not isinstance(spacing, numbers.Real)
            or not math.isfinite(spacing) or spacing <= 0):
        raise ValueError(f"spacing must be a positive finite number of mm, got {spacing!r}")
    out_dir = pathlib.Path(out_dir)
    rng = np.random.default_rng(seed)
    anatomy = sample_anatomy(rng, n_subjects)
    us_settings = sample_ultrasound(rng, n_subjects)
    mr_settings = sample_mr(rng, n_subjects)
    affine = phantom_affine((size, size, n_slices), float(spacing))
    paths = {"us": [], "mr": [], "labels": []}
    for folder in paths:
        (out_dir / folder).mkdir(parents=True, exist_ok=True)
    for i in range(n_subjects):
        repeat = [i] * n_slices
        rendered = _render(anatomy_along_z(anatomy, i, n_slices), _take(us_settings, repeat),
                           _take(mr_settings, repeat), size, rng)
        volumes = {
            "us": np.round((rendered["us"][..., 0] + 1.0) * 127.5).astype(np.uint8),
            "mr": np.round((rendered["mr"][..., 0] + 1.0) * 500.0).astype(np.int16),
            "labels": rendered["labels"],
        }
        for key, slices in volumes.items():
            path = out_dir / key / f"phantom_{i:03d}.nii.gz"
            _save_nifti(stack_slices(slices), affine, path)
            paths[key].append(path)
    return paths
