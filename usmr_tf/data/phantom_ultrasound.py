"""B-mode ultrasound rendering of phantom label maps (a fast, qualitative model).

Per pixel, the echo amplitude is

    A = E(label) * S(incidence) * T(path) * exp(-beta * depth) * speckle

- E: echogenicity of the tissue (bright skull, falx and choroid plexus; dark
  fluid), blurred by a small point-spread function;
- S: specular skull reflection, strongest where the beam hits the bone face on;
- T: transmission along the beam from a convex probe above the image, computed
  on a polar (beam x depth) grid as exp(-cumulative attenuation): the skull
  attenuates strongly, so the far hemisphere and whatever lies behind the skull
  are shadowed and the near skull wall is brighter than the far one;
- speckle: multiplicative Rayleigh noise (magnitude of spatially correlated
  complex Gaussian noise, normalised to mean 1).

The amplitude is log-compressed over a random dynamic range, mapped to [-1, 1]
and set to -1 outside the sector (fan) field of view.
"""

import functools

import numpy as np
from scipy import ndimage

from usmr_tf.data.phantom_anatomy import (
    LABELS,
    NUM_LABELS,
    image_grid,
    per_image_lookup,
    skull_normal,
)

# Echo amplitude (skull = 1) and attenuation (amplitude, per image half-width) per label.
_ECHO = np.zeros(NUM_LABELS, np.float32)
_ATTEN = np.zeros(NUM_LABELS, np.float32)
for _name, _echo, _atten in (
    ("background", 0.005, 0.05),  # amniotic fluid
    ("skull", 1.0, 0.0),  # set per image from `skull_alpha`
    ("csf", 0.01, 0.05),
    ("cortex", 0.2, 0.5),
    ("parenchyma", 0.12, 0.5),
    ("ventricles", 0.01, 0.05),
    ("thalami", 0.07, 0.5),
    ("cavum_septi_pellucidi", 0.005, 0.05),
    ("falx", 1.0, 1.0),
    ("choroid_plexus", 0.6, 0.6),
):
    _ECHO[LABELS[_name]] = _echo
    _ATTEN[LABELS[_name]] = _atten
_WALL_ECHO, _WALL_ATTEN = 0.18, 1.2  # maternal abdominal wall under the probe
_SPECKLE_SIGMA = (0.0, 0.8, 1.3)  # speckle correlation (axial, lateral) in pixels
_PSF_SIGMA = 0.7
_NEPER_TO_DB = np.float32(20.0 / np.log(10.0))  # amplitude attenuation exp(-x) in dB


def sample_ultrasound(rng, n):
    """Draws the probe, gain and attenuation settings of `n` US renderings."""

    def uniform(low, high, shape=n):
        return rng.uniform(low, high, shape).astype(np.float32)

    apex_y = uniform(-1.45, -1.2)
    return {
        "apex_x": uniform(-0.15, 0.15),
        "apex_y": apex_y,
        "half_angle": uniform(0.62, 0.8),  # radians, half the fan opening
        "r_min": -apex_y - uniform(0.85, 0.95),  # near arc of the convex probe
        "wall": uniform(0.05, 0.2),  # thickness of the maternal wall band
        "skull_alpha": uniform(10.0, 20.0),
        "beta": uniform(0.1, 0.4),  # extra depth attenuation
        "gain_db": uniform(-3.0, 3.0),
        "range_db": uniform(50.0, 60.0),
        "echo_jitter": uniform(0.85, 1.15, (n, NUM_LABELS)),
    }


def _clamp_index(coord, high):
    """Integer part of non-negative float `coord`, clamped to [0, high] (negatives -> 0)."""
    index = coord.astype(np.intp)
    np.maximum(index, 0, out=index)
    np.minimum(index, high, out=index)
    return index


def _transmission_db(alpha, settings, r, tan_phi, size):
    """One-way transmission loss (dB) along the beam from the probe to every pixel.

    The attenuation map `alpha` [c, H, W] is sampled on a polar grid (depth x
    beam), integrated along depth (cumulative sum, excluding the sample itself so a
    reflector's proximal face is not shadowed by itself) and read back per pixel.
    Beams are spaced uniformly in tan(angle), which avoids an arctan per pixel.
    """
    c = alpha.shape[0]
    n_r = n_beam = size
    col = {k: v[:, None, None] for k, v in settings.items() if v.ndim == 1}  # [c, 1, 1]
    r_min, r_max = col["r_min"], col["r_max"]
    dr = (r_max - r_min) / n_r
    steps = (np.arange(n_r, dtype=np.float32) + 0.5)[None, None, :]
    radii = r_min + dr * steps  # [c, 1, n_r]
    tan_half = np.tan(col["half_angle"])
    beams = (np.arange(n_beam, dtype=np.float32) + 0.5) / n_beam * 2.0 - 1.0
    beams = tan_half * beams[None, :, None]
    cos_b = 1.0 / np.sqrt(1.0 + beams * beams)  # [c, n_beam, 1]
    # Nearest pixel of each polar sample, in a copy of `alpha` padded with a zero
    # border that catches the samples falling outside the image.
    padded = np.pad(alpha, ((0, 0), (1, 1), (1, 1)))
    half_size = np.float32(size / 2.0)
    cols = _clamp_index((col["apex_x"] + 1.0 + radii * (beams * cos_b)) * half_size + 1.0,
                        size + 1)
    rows = _clamp_index((col["apex_y"] + 1.0 + radii * cos_b) * half_size + 1.0, size + 1)
    rows *= size + 2
    rows += cols
    rows += (np.arange(c, dtype=np.intp) * (size + 2) ** 2)[:, None, None]
    polar = np.take(padded, rows)
    polar *= dr
    loss = np.cumsum(polar, axis=2)
    polar *= 0.5
    loss -= polar  # attenuation before the sample's centre
    # Polar cell of each pixel.
    ri = _clamp_index((r - r_min) / dr, n_r - 1)
    bi = _clamp_index((tan_phi / tan_half + 1.0) * np.float32(n_beam / 2.0), n_beam - 1)
    bi *= n_r
    bi += ri
    bi += (np.arange(c, dtype=np.intp) * n_r * n_beam)[:, None, None]
    return np.take(loss, bi) * _NEPER_TO_DB


def _speckle_db(rng, shape):
    """Log-magnitude (dB) of correlated complex Gaussian noise: Rayleigh speckle of mean 1.

    The real and imaginary parts are low-pass filtered white noise; uniform noise
    (4x cheaper to draw than normal) is Gaussian after the filter's weighted sum.
    """
    parts = []
    for _ in range(2):
        noise = rng.random(shape, np.float32)
        noise -= 0.5
        noise *= np.float32(np.sqrt(12.0))  # unit variance
        parts.append(ndimage.gaussian_filter(noise, _SPECKLE_SIGMA, truncate=2.5))
    re, im = parts
    power = re * re + im * im
    return 10.0 * np.log10(np.maximum(power, 1e-12)) - _speckle_mean_db()


@functools.lru_cache(maxsize=None)
def _speckle_mean_db():
    """20 log10 E|z| of the filtered complex noise (E|z| = sigma sqrt(pi / 2), Rayleigh)."""
    delta = np.zeros((1, 21, 21), np.float32)
    delta[0, 10, 10] = 1.0
    kernel = ndimage.gaussian_filter(delta, _SPECKLE_SIGMA, truncate=2.5)
    sigma = float(np.sqrt(np.sum(kernel.astype(np.float64) ** 2)))
    return 20.0 * np.log10(sigma * np.sqrt(np.pi / 2.0))


def render_ultrasound(labels, anatomy, settings, rng):
    """US images [c, H, W] float32 in [-1, 1] (-1 outside the fan) of label maps [c, H, W]."""
    c, size = labels.shape[0], labels.shape[-1]
    col = {k: v[:, None, None] for k, v in settings.items() if v.ndim == 1}  # [c, 1, 1]
    x, y = image_grid(size)
    dx, dy = x - col["apex_x"], y - col["apex_y"]  # dy > 0: the probe is above the image
    r = np.sqrt(dx * dx + dy * dy)
    tan_phi = dx / dy
    in_fan = (np.abs(tan_phi) < np.tan(col["half_angle"])) & (r >= col["r_min"])
    wall = in_fan & (r < col["r_min"] + col["wall"])

    atten = np.broadcast_to(_ATTEN, (c, NUM_LABELS)).copy()
    atten[:, LABELS["skull"]] = settings["skull_alpha"]
    alpha = per_image_lookup(atten, labels)
    alpha[wall] = _WALL_ATTEN
    far = np.maximum(np.hypot(-1.0 - settings["apex_x"], 1.0 - settings["apex_y"]),
                     np.hypot(1.0 - settings["apex_x"], 1.0 - settings["apex_y"]))
    loss_db = _transmission_db(alpha, dict(settings, r_max=far.astype(np.float32)), r,
                               tan_phi, size)

    echo = per_image_lookup(_ECHO[None, :] * settings["echo_jitter"], labels)
    echo[wall] = _WALL_ECHO
    skull = np.nonzero(labels == LABELS["skull"])
    if skull[0].size:  # specular reflection: brightest where the beam meets the bone face on
        i = skull[0]
        pix = {k: np.take(v, i) for k, v in anatomy.items() if v.ndim == 1}
        sx, sy = x[0, 0, skull[2]], y[0, skull[1], 0]
        nx, ny = skull_normal(pix, sx, sy)
        bx, by = sx - np.take(settings["apex_x"], i), sy - np.take(settings["apex_y"], i)
        cos_inc = np.abs(nx * bx + ny * by) / np.maximum(r[skull], 1e-6)
        echo[skull] *= 0.25 + 0.75 * cos_inc * cos_inc
    echo = ndimage.gaussian_filter(echo, (0.0, _PSF_SIGMA, _PSF_SIGMA), truncate=3.0)

    db = 20.0 * np.log10(np.maximum(echo, 1e-6)) + _speckle_db(rng, labels.shape)
    db -= loss_db + _NEPER_TO_DB * col["beta"] * (r - col["r_min"])
    db += col["gain_db"] + col["range_db"]
    db *= 2.0 / col["range_db"]  # [-range, 0] dB -> [-1, 1]
    db -= 1.0
    np.maximum(db, -1.0, out=db)  # (np.clip is several times slower)
    np.minimum(db, 1.0, out=db)
    return np.where(in_fan, db, np.float32(-1.0))
