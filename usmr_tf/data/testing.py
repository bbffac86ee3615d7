"""Small synthetic inputs for tests: head-like volumes, oblique affines, NIfTI/PNG writers."""

import math
import pathlib

import nibabel as nib
import numpy as np
from PIL import Image
from scipy import ndimage


def head_volume(shape=(36, 44, 30), seed=0):
    """A smooth, asymmetric 'head' (ellipsoid with an intensity ramp) on a 0 background."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    inside = ((grid / np.array([0.8, 0.7, 0.75])[:, None, None, None]) ** 2).sum(0) <= 1
    ramp = 400 + 150 * grid[0] + 100 * grid[1] + 60 * grid[2]  # asymmetric along every axis
    data = np.where(inside, ramp + rng.normal(0, 2, shape), 0.0)
    return ndimage.gaussian_filter(data, 1.0).astype(np.float32)


def oblique_affine(spacing=(1.0, 1.2, 1.5), angle_deg=25.0, origin=(-20.0, 15.0, 5.0)):
    """A non-RAS voxel-to-world matrix: axes permuted (j, i, k), x flipped, rotated about z."""
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    perm_flip = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]], dtype=float)  # LAS-like, swapped
    affine = np.eye(4)
    affine[:3, :3] = rot @ perm_flip @ np.diag(spacing)
    affine[:3, 3] = origin
    return affine


def write_nifti(path, data, affine=None):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(data), np.eye(4) if affine is None else affine), path)
    return path


def ellipse_mask(shape, center, a, b, angle):
    """Boolean filled ellipse; `angle` of the major axis from +col towards +row (radians)."""
    rr, cc = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    x, y = cc - center[1], rr - center[0]
    u = x * math.cos(angle) + y * math.sin(angle)
    v = -x * math.sin(angle) + y * math.cos(angle)
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def us_head_image(shape=(120, 160), center=(60, 85), a=40, b=28, angle=0.4, seed=0):
    """A speckled US-like head (bright skull ring) and its filled ellipse annotation."""
    rng = np.random.default_rng(seed)
    head = ellipse_mask(shape, center, a, b, angle)
    ring = head & ~ellipse_mask(shape, center, a - 4, b - 4, angle)
    image = 40 + 30 * rng.random(shape) + 50 * head + 120 * ring
    return np.clip(image, 0, 255).astype(np.uint8), head


def write_png(path, array):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array)).save(path)
    return path
