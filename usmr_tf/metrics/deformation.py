"""Registration-based deformation score (paper §3.2).

The paper registers each synthesized MR to a real MR "at a similar imaging plane" with FFD
(B-spline free-form deformation, Rueckert et al. 1999) and reports the average Jacobian of
the deformation normalised to [0, 1] (lower is better, real MR scores 0). The reduction is
not given; this module uses (see docs/metrics.md for the reasons):

1. plane matching: the real MR candidate with the highest normalised mutual information
   after affine alignment (cheap moment-centred NMI ranking first, affine refinement of the
   best `top_k`);
2. affine pre-alignment, then a cubic B-spline FFD (Mattes MI, L-BFGS-B) of the synthesized
   (moving) onto the real (fixed) image, both resampled to `size` px;
3. `x = mean |log det J|` of the FFD part only, inside the head mask of the fixed image;
4. `score = 1 - exp(-x / tau)` in [0, 1).

Where the moving image's structures do not correspond to the real MR's (the US), the FFD
moves less the less contrast they have: the US at half its contrast scores like real MR,
and a blank head lower still (`benchmarks/deformation_references.py`, docs/metrics.md).
`equalise=True` (off by default: the published numbers) registers both images after
`rank_equalise`, which makes the score the same for any increasing remapping of either
image's intensities.
"""

import contextlib
import dataclasses

import numpy as np
from scipy import ndimage

from usmr_tf.metrics.checks import as_image_batch, foreground_mask

DEFAULT_SIZE = 64  # working resolution of the registration (px)
DEFAULT_MESH = 4  # B-spline control-point mesh (cells per side)
DEFAULT_TAU = 0.1  # mean |log det J| that maps to 1 - 1/e (~0.63)
MIN_DET = 1e-3  # folded / collapsed regions are clipped here before the log
NMI_BINS = 32


@dataclasses.dataclass(frozen=True)
class RegistrationConfig:
    size: int = DEFAULT_SIZE
    mesh_size: int = DEFAULT_MESH
    affine: bool = True
    affine_iterations: int = 100
    ffd_iterations: int = 60
    tau: float = DEFAULT_TAU
    equalise: bool = False  # register rank-equalised images (contrast-invariant score)


def _sitk():
    import SimpleITK as sitk

    return sitk


def _resize(image, size):
    if image.shape == (size, size):
        return image
    zoom = (size / image.shape[0], size / image.shape[1])
    return ndimage.zoom(image, zoom, order=1, mode="nearest", grid_mode=True)


def _to_sitk(image):
    sitk = _sitk()
    return sitk.GetImageFromArray(np.ascontiguousarray(image, dtype=np.float32))


@contextlib.contextmanager
def _single_threaded():
    """SimpleITK's threaded metric sums differ in the last bits from run to run: one thread
    makes scores reproducible (and is no slower on small images)."""
    sitk = _sitk()
    previous = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(previous)


def _registration():
    sitk = _sitk()
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=NMI_BINS)
    method.SetMetricSamplingStrategy(method.NONE)  # all pixels
    method.SetInterpolator(sitk.sitkLinear)
    return method


def affine_align(fixed, moving, iterations=100):
    """Affine transform (SimpleITK) mapping `fixed` [H, W] points into `moving` [H, W]."""
    sitk = _sitk()
    f, m = _to_sitk(fixed), _to_sitk(moving)
    initial = sitk.CenteredTransformInitializer(
        f, m, sitk.AffineTransform(2), sitk.CenteredTransformInitializerFilter.MOMENTS
    )
    method = _registration()
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=1.0, minStep=1e-3, numberOfIterations=iterations, relaxationFactor=0.6
    )
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel([2, 1])
    method.SetSmoothingSigmasPerLevel([1.0, 0.0])
    method.SetInitialTransform(initial, inPlace=False)
    try:
        with _single_threaded():
            return method.Execute(f, m)
    except RuntimeError:  # e.g. "too many samples map outside moving image buffer"
        return initial


def ffd_register(fixed, moving, config=RegistrationConfig()):
    """Affine + B-spline FFD of `moving` onto `fixed` (both `[size, size]`).

    Returns `(affine, bspline)`; the full map is `moving(affine(bspline(x)))`.
    """
    sitk = _sitk()
    f, m = _to_sitk(fixed), _to_sitk(moving)
    affine = (
        affine_align(fixed, moving, config.affine_iterations)
        if config.affine
        else sitk.AffineTransform(2)
    )
    bspline = sitk.BSplineTransformInitializer(f, [config.mesh_size] * 2, 3)
    method = _registration()
    method.SetOptimizerAsLBFGSB(
        gradientConvergenceTolerance=1e-5,
        numberOfIterations=config.ffd_iterations,
        maximumNumberOfCorrections=5,
        maximumNumberOfFunctionEvaluations=4 * config.ffd_iterations,
        costFunctionConvergenceFactor=1e7,
    )
    method.SetMovingInitialTransform(affine)
    method.SetInitialTransform(bspline, inPlace=True)
    try:
        with _single_threaded():
            method.Execute(f, m)
    except RuntimeError:  # registration diverged out of the image: keep what it reached
        pass
    return affine, bspline


def jacobian_determinant(transform, reference):
    """det J of `transform` on the pixel grid of the `[H, W]` array `reference`."""
    sitk = _sitk()
    ref = _to_sitk(reference)
    field = sitk.TransformToDisplacementField(
        transform,
        sitk.sitkVectorFloat64,
        ref.GetSize(),
        ref.GetOrigin(),
        ref.GetSpacing(),
        ref.GetDirection(),
    )
    det = sitk.GetArrayFromImage(sitk.DisplacementFieldJacobianDeterminant(field))
    # the filter's one-sided differences are wrong on the 1-px border: replicate the interior
    return np.pad(det[1:-1, 1:-1], 1, mode="edge")


def mean_abs_log_jacobian(det, mask=None):
    logs = np.abs(np.log(np.maximum(det, MIN_DET)))
    if mask is not None and mask.any():
        logs = logs[mask]
    return float(logs.mean())


def normalise(x, tau=DEFAULT_TAU):
    """Maps a mean |log det J| >= 0 to [0, 1): 1 - exp(-x / tau)."""
    return float(1.0 - np.exp(-max(x, 0.0) / tau))


def rank_equalise(image):
    """`[H, W]` image with its head's intensities replaced by their ranks, spread evenly over
    [-0.5, 1] (ties share their mean rank; -1 outside the head): the same result for every
    increasing remapping of the intensities; a head of one grey level stays one grey level."""
    from scipy.stats import rankdata

    mask = foreground_mask(image)
    out = np.full(image.shape, -1.0, np.float32)
    values = image[mask]
    if values.size > 1:
        out[mask] = -0.5 + 1.5 * (rankdata(values) - 1) / (values.size - 1)
    elif values.size:
        out[mask] = 0.25
    return out


def register_pair(synth, real, config=RegistrationConfig()):
    """Registers one synthesized MR `[H, W]` to one real MR `[H, W]`.

    Returns a dict: `score` in [0, 1], `mean_abs_log_jac` (x before normalisation) and `nmi`,
    the NMI of the real MR and the registered synth MR (1 = unrelated, 2 = identical) to flag
    images that could not be registered at all (noise scores low: nothing to align).
    """
    sitk = _sitk()
    synth = as_image_batch(synth, "synth")
    real = as_image_batch(real, "real")
    if synth.shape[0] != 1 or real.shape[0] != 1:
        raise ValueError("register_pair takes one image pair; use deformation_scores")
    fixed = _resize(real[0], config.size)
    moving = _resize(synth[0], config.size)
    if config.equalise:
        fixed, moving = rank_equalise(fixed), rank_equalise(moving)
    affine, bspline = ffd_register(fixed, moving, config)
    x = mean_abs_log_jacobian(jacobian_determinant(bspline, fixed), foreground_mask(fixed))
    full = sitk.CompositeTransform([affine, bspline])
    registered = sitk.GetArrayFromImage(
        sitk.Resample(_to_sitk(moving), _to_sitk(fixed), full, sitk.sitkLinear, -1.0))
    return {"score": normalise(x, config.tau), "mean_abs_log_jac": x,
            "nmi": normalised_mutual_information(fixed, registered)}


def deformation_score(synth, real, config=RegistrationConfig()):
    """Score in [0, 1] of one synthesized MR `[H, W]` registered to one real MR `[H, W]`."""
    return register_pair(synth, real, config)["score"]


def normalised_mutual_information(a, b, bins=NMI_BINS):
    """Studholme NMI (H(a) + H(b)) / H(a, b) in [1, 2] of two same-shape images in [-1, 1]."""
    hist, _, _ = np.histogram2d(a.ravel(), b.ravel(), bins=bins, range=[[-1, 1], [-1, 1]])
    p = hist / hist.sum()

    def entropy(q):
        q = q[q > 0]
        return -np.sum(q * np.log(q))

    joint = entropy(p)
    return float((entropy(p.sum(0)) + entropy(p.sum(1))) / joint) if joint > 0 else 2.0


def _centre(image):
    """Shifts the head's centre of mass to the image centre (cheap pre-ranking)."""
    weights = image + 1.0
    if weights.sum() <= 0:
        return image
    com = np.array(ndimage.center_of_mass(weights))
    shift = (np.array(image.shape) - 1) / 2.0 - com
    return ndimage.shift(image, shift, order=1, mode="constant", cval=-1.0)


def match_plane(synth, candidates, top_k=3, size=DEFAULT_SIZE):
    """Index of the real MR candidate at the most similar plane to `synth` `[H, W]`.

    Ranks all candidates by NMI after centring at 32 px, then refines the best `top_k`
    by NMI after affine alignment at `size` px. Returns `(index, nmi)`.
    """
    candidates = as_image_batch(candidates, "candidates")
    moving = as_image_batch(synth, "synth")[0]
    small = _centre(_resize(moving, 32))
    coarse = [normalised_mutual_information(_centre(_resize(c, 32)), small) for c in candidates]
    best = np.argsort(coarse)[::-1][: max(1, top_k)]
    if len(best) == 1:
        return int(best[0]), float(coarse[best[0]])
    sitk = _sitk()
    moving = _resize(moving, size)
    scores = []
    for index in best:
        fixed = _resize(candidates[index], size)
        affine = affine_align(fixed, moving, iterations=50)
        aligned = sitk.GetArrayFromImage(
            sitk.Resample(_to_sitk(moving), _to_sitk(fixed), affine, sitk.sitkLinear, -1.0)
        )
        scores.append(normalised_mutual_information(fixed, aligned))
    pick = int(np.argmax(scores))
    return int(best[pick]), float(scores[pick])


def deformation_scores(synth, real_candidates, top_k=3, config=RegistrationConfig(),
                       progress=None):
    """Per-slice scores of `synth [N, H, W(, 1)]` against plane-matched `real_candidates`.

    Returns a dict with `scores` `[N]`, `matched` `[N]` candidate indices, `nmi` `[N]` after
    registration (see `register_pair`), `mean`, `std`. `progress(1)` is called after each
    slice when given (e.g. a tqdm bar's `update`).
    """
    synth = as_image_batch(synth, "synth")
    real = as_image_batch(real_candidates, "real")
    scores, matched, nmi = [], [], []
    for image in synth:
        index, _ = match_plane(image, real, top_k=top_k, size=config.size)
        result = register_pair(image, real[index], config)
        matched.append(index)
        scores.append(result["score"])
        nmi.append(result["nmi"])
        if progress is not None:
            progress(1)
    scores = np.array(scores)
    return {
        "scores": scores,
        "matched": np.array(matched),
        "nmi": np.array(nmi),
        "mean": float(scores.mean()),
        "std": float(scores.std()),
    }


def warp_calibration(size=DEFAULT_SIZE, amplitudes=(0.5, 1.0, 2.0, 4.0, 8.0), seeds=(0, 1, 2),
                     config=None):
    """Scores of known smooth warps of `synthetic.head_phantom` (docs/metrics.md table).

    Returns rows `(amplitude_px, true mean |log det J|, estimated x, score fwd, score bwd)`
    averaged over `seeds`; the true value is from the applied displacement field.
    """
    from usmr_tf.metrics import synthetic

    config = config or RegistrationConfig(size=size)
    rows = []
    for amplitude in amplitudes:
        values = []
        for seed in seeds:
            image = synthetic.head_phantom(size, seed=seed)
            field = synthetic.smooth_displacement(size, amplitude, seed=seed)
            moved = synthetic.warp(image, field)
            (dyy, dyx), (dxy, dxx) = np.gradient(field[0]), np.gradient(field[1])
            true_det = (1 + dyy) * (1 + dxx) - dyx * dxy
            mask = foreground_mask(image)
            _, bspline = ffd_register(image, moved, config)
            estimate = mean_abs_log_jacobian(jacobian_determinant(bspline, image), mask)
            values.append((mean_abs_log_jacobian(true_det, mask), estimate,
                           deformation_score(moved, image, config),
                           deformation_score(image, moved, config)))
        rows.append((amplitude, *np.mean(values, axis=0).tolist()))
    return rows
