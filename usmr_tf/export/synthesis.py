"""US -> MR synthesis with an exported model, for volumes and 2D images (``usmr synthesize``).

Volumes are cut into slices along the model's slice axis with
:func:`usmr_tf.data.volume_to_slices` (the training preprocessing), synthesized in batches and
put back into the input's voxel grid with :func:`usmr_tf.data.slices_to_volume`; the NIfTI
written keeps the input's affine, orientation codes, spacing and units. 2D PNG/JPEG images
go through :func:`usmr_tf.data.image_to_slice` and back with :func:`usmr_tf.data.unfit_square`;
with ``--align auto`` / ``hc18`` they are aligned on the located / annotated head ellipse
(:func:`located_image_slice` / :func:`aligned_image_slice`, both
:func:`usmr_tf.data.hc18.spatial_normalize`, the preset's training preprocessing) and go back
with the inverse affine (:func:`unalign_mr`). ``usmr_tf.export.raw_pipeline`` is the same
pipeline in TF ops, for TF Serving.

Outputs are research images, not diagnoses: the NIfTI ``descrip`` field and the preview
figure say so.
"""

import pathlib

import nibabel as nib
import numpy as np
from scipy import ndimage

from usmr_tf.atomic import atomic_path
from usmr_tf.data import (
    SquareFit,
    image_to_slice,
    load_image,
    load_volume,
    slices_to_volume,
    unfit_square,
    volume_to_slices,
)
from usmr_tf.data.hc18 import MASK_MARGIN, annotation_path, load_hc18
from usmr_tf.data.square import BACKGROUND
from usmr_tf.errors import DataError
from usmr_tf.export.metadata import RESEARCH_NOTICE

NIFTI_DESCRIP = b"usmr synthesized MR: research output, not for diagnosis"


def predict_batched(runner, slices, batch_size=32, progress=None):
    """``runner`` over ``[N, S, S, 1]`` in batches; ``progress.update(n)`` after each batch."""
    outputs = []
    for start in range(0, len(slices), batch_size):
        batch = slices[start:start + batch_size]
        outputs.append(np.asarray(runner(batch), dtype=np.float32))
        if progress is not None:
            progress.update(len(batch))
    if not outputs:
        return np.zeros((0,) + tuple(slices.shape[1:]), np.float32)
    return np.concatenate(outputs)


def synthesize_slices(model_dir, slices, version=None, batch_size=32):
    """The MR of an exported model (``usmr export``'s folder, the highest version unless
    ``version``) for prepared US slices ``[N, S, S, 1]`` in [-1, 1]: ``[N, S, S, 1]`` float32.
    The one call the benchmarks and scripts use to score an export on a prepared set."""
    from usmr_tf.export.runtimes import SavedModelRunner  # TF loaded only when used

    return predict_batched(SavedModelRunner(pathlib.Path(model_dir), version=version), slices,
                           batch_size)


def volume_slices(path, axis, image_size, min_foreground=0.0):
    """Loads a NIfTI volume and cuts it: ``(volume, us_slices [N, S, S, 1], geometry)``."""
    volume = load_volume(path)  # DataError for unreadable / wrong rank / NaN / constant
    slices, geometry = volume_to_slices(volume, axis=axis, size=image_size,
                                        min_foreground=min_foreground)
    if len(slices) == 0:
        raise DataError("no slice with foreground to synthesize", path)
    return volume, slices, geometry


def image_slice(path, image_size):
    """Loads a PNG/JPEG: ``(us_slice [S, S, 1], SquareFit)``."""
    image = load_image(path)  # DataError for unreadable / not an image / constant
    us, transform = image_to_slice(image, image_size, path=path)
    return us, SquareFit.from_dict(transform["fit"])


def require_annotation(path):
    """The HC18 ``<stem>_Annotation.png`` of an image; DataError naming both when missing."""
    annotation = annotation_path(path)
    if not annotation.is_file():
        raise DataError(f"HC18 annotation {annotation.name} is missing (expected {annotation}; "
                        "needed by --align-hc18)", path)
    return annotation


def aligned_image_slice(path, image_size, head_fraction=0.8):
    """HC18 image + its ``*_Annotation.png``: ``(aligned us_slice [S, S, 1], transform dict)``.

    The transform maps aligned (row, col) to image (row, col): ``in = matrix @ out + offset``.
    """
    require_annotation(path)
    return load_hc18(path, image_size, align=True, head_fraction=head_fraction)


def located_image_slice(path, location, image_size, head_fraction=0.8):
    """Raw image + its located head (``usmr_tf.models.head_locator.Location``):
    ``(aligned us_slice [S, S, 1], transform dict)``, the same alignment as for an annotation."""
    from usmr_tf.data.hc18 import spatial_normalize

    return spatial_normalize(load_image(path), location.to_hc18_ellipse(), image_size,
                             head_fraction=head_fraction, path=path)


def head_mask(rows, cols, transform, margin=MASK_MARGIN):  # spatial_normalize's mask_margin
    """True where image coordinates (``rows``, ``cols``) lie inside the annotated head ellipse
    of an ``hc18_aligned`` transform, grown by ``margin`` (as ``spatial_normalize`` masks)."""
    ellipse = transform["ellipse"]
    (r0, c0), angle = ellipse["center"], ellipse["angle"]
    x, y = np.asarray(cols) - c0, np.asarray(rows) - r0
    u = x * np.cos(angle) + y * np.sin(angle)  # along the major axis
    v = -x * np.sin(angle) + y * np.cos(angle)
    grow = 1.0 + margin
    return (u / (ellipse["a"] * grow)) ** 2 + (v / (ellipse["b"] * grow)) ** 2 <= 1.0


def mask_aligned_mr(mr_slice, transform):
    """Aligned ``[S, S, 1]`` MR with everything outside the head set to -1 (background)."""
    mr = np.array(mr_slice, dtype=np.float32)
    size = mr.shape[0]
    grid = np.mgrid[0:size, 0:size].reshape(2, -1).astype(np.float64)
    rows, cols = np.asarray(transform["matrix"]) @ grid + np.asarray(transform["offset"])[:, None]
    mr[~head_mask(rows, cols, transform).reshape(size, size)] = BACKGROUND
    return mr


def unalign_mr(mr_slice, transform):
    """Aligned ``[S, S, 1]`` MR -> float32 ``[h, w]`` in the original image's frame.

    Inverse of the alignment affine (bilinear), -1 outside the head ellipse and the frame.
    """
    matrix = np.asarray(transform["matrix"], dtype=np.float64)
    offset = np.asarray(transform["offset"], dtype=np.float64)
    inverse = np.linalg.inv(matrix)  # out = inverse @ (in - offset)
    shape = tuple(int(n) for n in transform["source_shape"][:2])
    image = ndimage.affine_transform(np.asarray(mr_slice, dtype=np.float64)[..., 0], inverse,
                                     offset=-inverse @ offset, output_shape=shape, order=1,
                                     mode="constant", cval=BACKGROUND)
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
    image[~head_mask(rows, cols, transform)] = BACKGROUND
    return np.clip(image, -1.0, 1.0).astype(np.float32)


def to_uint8(image):
    """[-1, 1] -> uint8 grey levels (-1 -> 0, +1 -> 255)."""
    image = np.asarray(image)
    return np.round(np.clip((image + 1.0) * 127.5, 0, 255)).astype(np.uint8)


def mr_to_volume(mr_slices, geometry):
    """Synthesized slices -> float32 volume in the input's grid, [-1, 1], -1 outside."""
    return slices_to_volume(mr_slices, geometry)


def mr_to_image(mr_slice, fit):
    """``[S, S, 1]`` in [-1, 1] -> uint8 ``[h, w]`` in the input image's size."""
    return to_uint8(unfit_square(np.asarray(mr_slice)[None, ..., 0], fit)[0])


def save_nifti_like(data, reference, path):
    """Writes ``data`` (float32) with the affine, q/s-form codes, zooms and units of ``reference``.

    ``reference`` is the input :class:`usmr_tf.data.Volume`. Intensity scaling of the input
    (scl_slope, cal_min/max) is not carried over: the output is float32 in [-1, 1].
    """
    header = reference.header.copy() if reference.header is not None else nib.Nifti1Header()
    if not isinstance(header, nib.Nifti1Header):
        header = nib.Nifti1Header.from_header(header)
    image = nib.Nifti1Image(np.asarray(data, dtype=np.float32), reference.affine, header=header)
    image.set_data_dtype(np.float32)
    qcode = int(header["qform_code"]) or 1
    scode = int(header["sform_code"]) or 1
    image.set_qform(reference.affine, code=qcode)
    image.set_sform(reference.affine, code=scode)
    image.header.set_slope_inter(None, None)
    image.header["cal_min"] = image.header["cal_max"] = 0
    image.header["descrip"] = NIFTI_DESCRIP
    with atomic_path(path) as tmp:
        nib.save(image, str(tmp))
    return pathlib.Path(path)


def save_png(array, path):
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")
    return pathlib.Path(path)


def save_preview(us_image, mr_image, path, title=None, labels=("input US", "synthesized MR")):
    """Side-by-side figure (input US | synthesized MR) labelled as research output."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 4.4))
    for ax, image, label in zip(axes, (us_image, mr_image), labels):
        ax.imshow(np.asarray(image).squeeze(), cmap="gray", vmin=-1, vmax=1)
        ax.set_title(label)
        ax.axis("off")
    fig.suptitle(f"{title + ' - ' if title else ''}{RESEARCH_NOTICE}", fontsize=10)
    fig.text(0.5, 0.02, RESEARCH_NOTICE, ha="center", fontsize=9, color="darkred")
    path = pathlib.Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100, format=(path.suffix.lstrip(".") or "png"))
    finally:
        plt.close(fig)
    return path
