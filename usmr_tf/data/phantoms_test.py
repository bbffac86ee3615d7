import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from usmr_tf.data import phantom_anatomy, phantom_ultrasound
from usmr_tf.data.phantoms import (
    LABELS,
    generate_phantoms,
    phantom_affine,
    stack_slices,
    unpaired_phantoms,
    write_phantom_volumes,
)

SIZE = 64


@pytest.fixture(scope="module")
def batch():
    return generate_phantoms(16, size=SIZE, seed=2)


def _mean_on(images, mask):
    return float(images[mask].mean())


def test_shapes_dtypes_and_range(batch):
    assert set(batch) == {"us", "mr", "labels", "head_mask"}
    for key in ("us", "mr"):
        images = batch[key]
        assert images.shape == (16, SIZE, SIZE, 1) and images.dtype == np.float32
        assert np.isfinite(images).all()
        assert images.min() == -1.0 and images.max() <= 1.0
    labels = batch["labels"]
    assert labels.shape == (16, SIZE, SIZE) and np.issubdtype(labels.dtype, np.integer)
    assert set(np.unique(labels)) <= set(LABELS.values())
    assert batch["head_mask"].dtype == bool
    np.testing.assert_array_equal(batch["head_mask"], labels > 0)


def test_every_phantom_has_the_main_structures(batch):
    for name in ("skull", "csf", "cortex", "parenchyma", "ventricles", "thalami",
                 "cavum_septi_pellucidi", "falx"):
        present = (batch["labels"] == LABELS[name]).any(axis=(1, 2))
        assert present.all(), f"{name} missing in phantoms {np.flatnonzero(~present)}"


def test_deterministic_under_a_seed_and_different_across_seeds():
    a = generate_phantoms(3, size=SIZE, seed=7)
    b = generate_phantoms(3, size=SIZE, seed=7)
    c = generate_phantoms(3, size=SIZE, seed=8)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
        assert not np.array_equal(a[key], c[key]), key
    # phantoms within a batch differ too
    assert not np.array_equal(a["labels"][0], a["labels"][1])


def test_background_is_minus_one(batch):
    us, mr, head = batch["us"][..., 0], batch["mr"][..., 0], batch["head_mask"]
    # MR: -1 exactly outside the head and above -1 inside it (same geometry as the labels)
    np.testing.assert_array_equal(mr > -1.0, head)
    # US: the probe sits above the image, so the top corners are outside the fan
    assert (us[:, 0, 0] == -1.0).all() and (us[:, 0, -1] == -1.0).all()
    assert ((us > -1.0).mean(axis=(1, 2)) > 0.3).all()  # the fan covers much of the image


def test_us_and_mr_contrast_of_the_same_anatomy(batch):
    us, mr, labels = batch["us"][..., 0], batch["mr"][..., 0], batch["labels"]
    fan = us > -1.0

    def region(name):
        return labels == LABELS[name]

    # ventricles and cavum (the thin extra-axial CSF is blurred with the bright skull in US)
    fluid = region("ventricles") | region("cavum_septi_pellucidi")
    # skull: bright in US, dark in MR
    assert _mean_on(us, region("skull") & fan) > _mean_on(us, region("parenchyma") & fan) + 0.15
    assert _mean_on(mr, region("skull")) < _mean_on(mr, region("parenchyma")) - 0.5
    # fluid: bright in T2 MR, dark (anechoic) in US
    assert _mean_on(mr, region("ventricles")) > _mean_on(mr, region("parenchyma")) + 0.2
    assert _mean_on(mr, fluid) > _mean_on(mr, region("thalami")) + 0.3
    assert _mean_on(us, fluid & fan) < _mean_on(us, region("parenchyma") & fan)
    # thalami darker than parenchyma in MR; falx and choroid plexus echogenic in US
    assert _mean_on(mr, region("thalami")) < _mean_on(mr, region("parenchyma")) - 0.2
    bright = region("falx") | region("choroid_plexus")
    assert _mean_on(us, bright & fan) > _mean_on(us, region("parenchyma") & fan) + 0.2


def test_us_speckle_is_stronger_than_mr_noise(batch):
    us, mr, labels = batch["us"][..., 0], batch["mr"][..., 0], batch["labels"]
    inside = ndimage.binary_erosion(labels == LABELS["parenchyma"], structure=np.ones((1, 3, 3)))
    inside &= us > -1.0
    assert us[inside].std() > 2.0 * mr[inside].std()
    assert mr[inside].std() > 0.0  # MR is noisy too


def test_speckle_is_rayleigh_with_unit_mean():
    db = phantom_ultrasound._speckle_db(np.random.default_rng(0), (4, 128, 128))
    amplitude = 10.0 ** (db / 20.0)
    assert abs(amplitude.mean() - 1.0) < 0.05
    # Rayleigh: std / mean = sqrt(4 / pi - 1) = 0.523
    assert abs(amplitude.std() / amplitude.mean() - 0.523) < 0.03


def test_near_skull_wall_is_brighter_than_far_wall(batch):
    us, labels, head = batch["us"][..., 0], batch["labels"], batch["head_mask"]
    rows = np.arange(SIZE)[:, None] * np.ones((1, SIZE))
    near, far = [], []
    for i in range(len(us)):
        skull = (labels[i] == LABELS["skull"]) & (us[i] > -1.0)
        centre = rows[head[i]].mean()  # the probe is above the image: near wall = upper half
        near.append(us[i][skull & (rows < centre)].mean())
        far.append(us[i][skull & (rows > centre)].mean())
    assert np.mean(near) > np.mean(far) + 0.05


def _render_us(n, seed, **overrides):
    rng = np.random.default_rng(seed)
    anatomy = phantom_anatomy.sample_anatomy(rng, n)
    settings = phantom_ultrasound.sample_ultrasound(rng, n)
    settings.update({k: np.full(n, v, np.float32) for k, v in overrides.items()})
    labels = phantom_anatomy.rasterise_labels(anatomy, SIZE)
    return labels, phantom_ultrasound.render_ultrasound(labels, anatomy, settings, rng)


def test_skull_casts_an_acoustic_shadow():
    labels, shadowed = _render_us(8, 3, skull_alpha=20.0)
    _, clear = _render_us(8, 3, skull_alpha=0.0)
    rows = np.arange(SIZE)[None, :, None]
    head = labels > 0
    below = np.array([rows[0, :, 0][h.any(axis=1)].max() for h in head])[:, None, None]
    behind = (rows > below) & (clear > -1.0)  # in the fan, beyond the far skull wall
    inside = (labels == LABELS["parenchyma"]) & (clear > -1.0)
    assert behind.sum() > 0
    assert shadowed[behind].mean() < clear[behind].mean() - 0.1
    assert shadowed[inside].mean() < clear[inside].mean() - 0.05


def test_depth_attenuation_darkens_deep_tissue():
    labels, low = _render_us(8, 4, beta=0.0)
    _, high = _render_us(8, 4, beta=1.5)
    deep = (labels == LABELS["parenchyma"]) & (low > -1.0)
    deep[:, : SIZE // 2] = False
    assert high[deep].mean() < low[deep].mean() - 0.1


def test_unpaired_phantoms_pair_us_with_mr_paired_only():
    us, mr, mr_paired = unpaired_phantoms(8, 5, size=SIZE, seed=0)
    assert us.shape == (8, SIZE, SIZE, 1) and mr_paired.shape == (8, SIZE, SIZE, 1)
    assert mr.shape == (5, SIZE, SIZE, 1)
    assert all(a.dtype == np.float32 for a in (us, mr, mr_paired))
    for i in range(5):  # mr comes from other anatomies than us / mr_paired
        assert not np.array_equal(mr[i] > -1.0, mr_paired[i] > -1.0)

    def skull_ring_brightness(mr_images):
        # mean US over the outer 2-pixel ring of the MR head: the skull, if aligned
        values = []
        for u, m in zip(us[..., 0], mr_images[..., 0]):
            head = m > -1.0
            ring = head & ~ndimage.binary_erosion(head, iterations=2) & (u > -1.0)
            values.append(u[ring].mean())
        return np.mean(values)

    _, mr_other, _ = unpaired_phantoms(8, 8, size=SIZE, seed=0)
    assert skull_ring_brightness(mr_paired) > skull_ring_brightness(mr_other) + 0.1
    again = unpaired_phantoms(8, 5, size=SIZE, seed=0)
    for a, b in zip((us, mr, mr_paired), again):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n": 0}, "n must be a positive integer"),
        ({"n": -3}, "n must be a positive integer"),
        ({"n": 2.5}, "n must be a positive integer"),
        ({"n": 2, "size": 16}, "size must be an integer >= 32"),
        ({"n": 2, "size": "64"}, "size must be an integer >= 32"),
    ],
)
def test_generate_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_phantoms(**kwargs)


def test_unpaired_and_volumes_reject_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="n_mr must be a positive integer"):
        unpaired_phantoms(4, 0, size=SIZE)
    with pytest.raises(ValueError, match="size must be"):
        unpaired_phantoms(4, 4, size=8)
    for kwargs, match in (
        ({"n_subjects": 0}, "n_subjects"),
        ({"n_subjects": 1, "n_slices": 0}, "n_slices"),
        ({"n_subjects": 1, "spacing": 0.0}, "spacing"),
        ({"n_subjects": 1, "spacing": float("nan")}, "spacing"),
    ):
        with pytest.raises(ValueError, match=match):
            write_phantom_volumes(tmp_path / "bad", size=32, **kwargs)
    assert not (tmp_path / "bad").exists()


def test_stack_slices_puts_slice_k_at_z_index_k():
    slices = np.arange(3 * 4 * 5).reshape(3, 4, 5)
    volume = stack_slices(slices)
    assert volume.shape == (4, 5, 3)
    for k in range(3):
        np.testing.assert_array_equal(volume[:, :, k], slices[k])


def test_write_phantom_volumes(tmp_path):
    paths = write_phantom_volumes(tmp_path, 2, size=48, n_slices=5, seed=1, spacing=0.8)
    assert set(paths) == {"us", "mr", "labels"}
    affine = phantom_affine((48, 48, 5), 0.8)
    np.testing.assert_allclose(affine[:3, :3], 0.8 * np.eye(3))
    np.testing.assert_allclose(affine[:3, :3] @ [23.5, 23.5, 2.0] + affine[:3, 3], 0.0)
    loaded = {}
    for key, dtype in (("us", np.uint8), ("mr", np.int16), ("labels", np.uint8)):
        assert len(paths[key]) == 2
        for path in paths[key]:
            assert path.parent == tmp_path / key and path.name.endswith(".nii.gz")
            image = nib.load(path)
            assert image.shape == (48, 48, 5)
            assert image.get_data_dtype() == dtype
            np.testing.assert_allclose(image.affine, affine, atol=1e-6)
            np.testing.assert_allclose(image.header.get_zooms(), (0.8, 0.8, 0.8), atol=1e-6)
        loaded[key] = np.asarray(nib.load(paths[key][0]).dataobj)
    leftovers = [p.name for p in tmp_path.rglob("*") if p.name.startswith(".")]
    assert not leftovers

    labels, mr, us = loaded["labels"], loaded["mr"], loaded["us"]
    assert set(np.unique(labels)) <= set(LABELS.values())
    np.testing.assert_array_equal(mr > 0, labels > 0)  # MR and labels share geometry
    assert us.max() > 200 and (us == 0).any()  # raw-scanner-like US: bright skull, 0 outside fan
    # anatomy varies smoothly along z: the head section peaks mid-slab, thalami only there
    area = (labels > 0).sum(axis=(0, 1))
    assert area[2] == area.max() and area[0] < area[2] and area[-1] < area[2]
    for name in ("thalami", "cavum_septi_pellucidi"):
        count = (labels == LABELS[name]).sum(axis=(0, 1))
        assert count[2] > 0 and count[0] == 0 and count[-1] == 0, (name, count)
    for k in range(4):
        a, b = labels[..., k] > 0, labels[..., k + 1] > 0
        assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.85  # neighbouring slices overlap
    # same seed -> same files' contents
    again = write_phantom_volumes(tmp_path / "again", 2, size=48, n_slices=5, seed=1)
    np.testing.assert_array_equal(np.asarray(nib.load(again["us"][0]).dataobj), us)


def test_phantom_volumes_go_through_the_volume_pipeline(tmp_path):
    from usmr_tf.data.volume import volume_to_slices

    paths = write_phantom_volumes(tmp_path, 1, size=48, n_slices=8, seed=3)
    for key in ("us", "mr"):
        slices, geometry = volume_to_slices(paths[key][0], axis=2, size=32)
        assert slices.shape[1:] == (32, 32, 1) and len(slices) >= 4, key
        assert slices.min() >= -1.0 and slices.max() <= 1.0 and slices.std() > 0.1, key
        np.testing.assert_allclose(geometry.affine, phantom_affine((48, 48, 8), 0.8))


def test_preview_command_writes_a_png_and_prints_the_speed(tmp_path, capsys):
    from usmr_tf.data import phantom_preview

    figure = tmp_path / "figs" / "phantoms.png"
    args = ["--figure", str(figure), "--n", "2", "--size", "32", "--speed", "4"]
    assert phantom_preview.main(args) == 0
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in figure.parent.iterdir()] == ["phantoms.png"]  # no temp file left
    out = capsys.readouterr().out
    assert "wrote" in out and "generate_phantoms(4, size=32)" in out and "slices/s" in out
