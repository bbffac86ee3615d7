import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from usmr_tf.data import augment, cache
from usmr_tf.data.pipeline import unpaired_dataset
from usmr_tf.errors import DataError


def _images(n, size=16, seed=0):
    """Distinct images: a random block, and pixel (0, 0) encodes the index i."""
    rng = np.random.default_rng(seed)
    out = np.full((n, size, size, 1), -1.0, np.float32)
    for i in range(n):
        out[i, 4:12, 3:9, 0] = rng.uniform(-0.5, 1.0)
        out[i, 0, 0, 0] = -1 + (i + 1) / (n + 1)
    return out


def _ids(batch, n):
    return np.rint((batch[:, 0, 0, 0] + 1) * (n + 1) - 1).astype(int)


def _take(ds, k):
    return [tuple(t.numpy() for t in batch) for batch in ds.take(k)]


def test_shapes_dtypes_and_range():
    us, mr = _images(30), _images(4, seed=1)
    ds = unpaired_dataset(us, mr, 8, augment=True)
    assert all(spec.shape == (8, 16, 16, 1) and spec.dtype == tf.float32
               for spec in ds.element_spec)
    for u, m in _take(ds, 5):
        assert u.shape == m.shape == (8, 16, 16, 1)
        assert u.min() >= -1 and u.max() <= 1 and m.min() >= -1 and m.max() <= 1


def test_same_seed_same_batches_other_seed_differs():
    us, mr = _images(30), _images(5, seed=1)
    for aug in (False, True):
        a = _take(unpaired_dataset(us, mr, 4, seed=7, augment=aug), 6)
        b = _take(unpaired_dataset(us, mr, 4, seed=7, augment=aug), 6)
        c = _take(unpaired_dataset(us, mr, 4, seed=8, augment=aug), 6)
        assert all(np.array_equal(x, y) for p, q in zip(a, b) for x, y in zip(p, q))
        assert not all(np.array_equal(x, y) for p, q in zip(a, c) for x, y in zip(p, q))


def test_sides_shuffle_and_repeat_independently():
    n_us, n_mr = 24, 3  # an 8:1 imbalance
    us, mr = _images(n_us), _images(n_mr, seed=1)
    batches = _take(unpaired_dataset(us, mr, 4, seed=0), 12)  # two US epochs
    us_ids = np.concatenate([_ids(u, n_us) for u, _ in batches])
    mr_ids = np.concatenate([_ids(m, n_mr) for _, m in batches])
    assert sorted(us_ids[:n_us]) == list(range(n_us))  # each US image once per epoch
    assert sorted(us_ids[n_us:]) == list(range(n_us))
    assert not np.array_equal(us_ids[:n_us], us_ids[n_us:])  # reshuffled each epoch
    assert not np.array_equal(us_ids[:n_us], np.arange(n_us))
    counts = np.bincount(mr_ids, minlength=n_mr)
    assert counts.min() == counts.max() == 48 // n_mr  # MR cycles 16 times, evenly


def test_single_pass_without_repeat():
    us, mr = _images(10), _images(3, seed=1)
    batches = _take(unpaired_dataset(us, mr, 4, repeat=False, drop_remainder=False,
                                     shuffle=False), 100)
    ids = np.concatenate([_ids(u, 10) for u, _ in batches])
    assert ids.tolist() == list(range(10)) and len(batches) == 3
    with pytest.raises(DataError, match="cannot fill"):
        unpaired_dataset(us[:3], mr, 4, repeat=False)


def test_paired_mr_follows_us_through_shuffle_and_geometry():
    us, mr = _images(12), _images(3, seed=1)
    paired = us.copy()
    batches = _take(unpaired_dataset(us, mr, 4, paired_mr=paired, seed=2,
                                     augment={"intensity": 0.0, "max_rotation": 15}), 6)
    plain = _take(unpaired_dataset(us, mr, 4, paired_mr=paired, seed=2), 6)
    assert len(batches[0]) == 3
    for (u, _, p), (u0, _, p0) in zip(batches, plain):
        np.testing.assert_array_equal(u, p)  # same images, same flips and rotation
        np.testing.assert_array_equal(u0, p0)
        assert not np.allclose(u, u0)  # augmentation did move the images


def test_intensity_jitter_keeps_background_and_range():
    x = tf.constant(_images(16))
    y = augment.intensity_jitter(x, tf.constant([1, 2]), strength=0.3).numpy()
    assert np.all(y[x.numpy() == -1] == -1)
    assert y.min() >= -1 and y.max() <= 1 and not np.allclose(y, x.numpy())


def test_rotation_by_quarter_turn_matches_rot90():
    image = tf.random.stateless_uniform([1, 9, 9, 1], [0, 1], -1, 1)
    transform = augment._rotation_transforms(tf.constant([math.pi / 2]), 9, 9)
    rotated = tf.raw_ops.ImageProjectiveTransformV3(
        images=image, transforms=transform, output_shape=[9, 9], fill_value=-1.0,
        interpolation="BILINEAR", fill_mode="CONSTANT")
    expected = np.rot90(image.numpy()[0, ..., 0], k=1)
    np.testing.assert_allclose(rotated.numpy()[0, ..., 0], expected, atol=1e-4)


def test_reads_prepared_dataset_folders(tmp_path):
    us, mr = _images(9), _images(4, seed=1)
    parts = {"us": {"train": (us, [{}] * 9), "test": (us[:2], [{}] * 2)},
             "mr": {"train": (mr, [{}] * 4), "test": (mr[:1], [{}])}}
    out = cache.write_prepared(tmp_path / "ds", parts, {"key": "x"})
    u, m = _take(unpaired_dataset(out / "us", out / "mr", 3, shuffle=False), 1)[0]
    np.testing.assert_array_equal(u, us[:3])
    np.testing.assert_array_equal(m, mr[:3])
    u, m = _take(unpaired_dataset(out, out, 2, split="test", shuffle=False), 1)[0]
    np.testing.assert_array_equal(u, us[:2])


@pytest.mark.parametrize("bad,match", [
    (np.zeros((0, 16, 16, 1), np.float32), "no images"),
    (np.full((4, 16, 16, 1), 3.0, np.float32), r"expected \[-1, 1\]"),
    (np.full((4, 16, 16, 1), np.nan, np.float32), "NaN"),
    (np.zeros((4, 16, 16, 3), np.float32), "expected images"),
    (np.zeros((4, 8, 8, 1), np.float32), "mr images"),
])
def test_bad_arrays(bad, match):
    with pytest.raises(DataError, match=match):
        unpaired_dataset(bad, _images(4), 2)


def test_fit_under_two_replica_mirrored_strategy():
    devices = tf.config.list_logical_devices("CPU")
    if len(devices) < 2:
        pytest.skip("conftest could not split the CPU into two logical devices")
    strategy = tf.distribute.MirroredStrategy(
        [d.name for d in devices[:2]], cross_device_ops=tf.distribute.ReductionToOneDevice())
    assert strategy.num_replicas_in_sync == 2
    us, mr = _images(20), _images(4, seed=1)
    ds = unpaired_dataset(us, mr, 8, augment=True)  # (us, mr) = (x, y) for this toy model
    with strategy.scope():
        model = keras.Sequential([keras.Input((16, 16, 1)),
                                  keras.layers.Conv2D(1, 3, padding="same")])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mae")
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(ds, steps_per_epoch=3, epochs=1, verbose=0, shuffle=False)
    loss = history.history["loss"][0]
    assert np.isfinite(loss)
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))


# --- MR-only augmentation (issue 11) ---------------------------------------------------


def _heads(n, size=32, seed=0):
    """Ellipse 'heads' with a gradient inside, background -1."""
    rng = np.random.default_rng(seed)
    r, c = np.mgrid[:size, :size] / (size - 1) * 2 - 1
    out = np.full((n, size, size, 1), -1.0, np.float32)
    for i in range(n):
        inside = (r / 0.6) ** 2 + (c / 0.8) ** 2 <= 1
        out[i, ..., 0][inside] = np.clip(0.5 * c[inside] + rng.uniform(-0.3, 0.3), -0.9, 1)
    return out


def test_augment_mr_shape_range_determinism_and_change():
    x = _heads(6)
    seed = tf.constant([3, 4], tf.int64)
    a = augment.augment_mr(x, seed).numpy()
    b = augment.augment_mr(x, seed).numpy()
    c = augment.augment_mr(x, tf.constant([3, 5], tf.int64)).numpy()
    assert a.shape == x.shape and a.dtype == np.float32
    assert a.min() >= -1 and a.max() <= 1
    assert np.array_equal(a, b)  # stateless
    assert not np.allclose(a, c)  # another seed, other images
    assert np.abs(a - x).mean() > 0.02  # it changes the images ...
    per_image = np.abs(a - x).mean(axis=(1, 2, 3))
    assert (per_image > 0.005).all()  # ... every one of them
    corner = a[:, :2, :2, 0]
    assert np.all(corner == -1)  # background stays -1 far from the head


def test_augment_mr_each_part_alone():
    x = _heads(4)
    seed = tf.constant([1, 2], tf.int64)
    off = dict(bias=0, intensity=0, noise=0, scale=0, aspect=0, shift=0)
    assert np.allclose(augment.augment_mr(x, seed, **off).numpy(), x, atol=1e-6)
    head = x > -1
    for key, value in [("bias", 0.3), ("intensity", 0.15), ("noise", 0.02)]:
        y = augment.augment_mr(x, seed, **dict(off, **{key: value})).numpy()
        assert not np.allclose(y[head], x[head], atol=1e-3), key  # intensities change
        assert np.array_equal(y[~head], x[~head]), key  # geometry and background do not
    for key, value in [("scale", 0.1), ("aspect", 0.08), ("shift", 0.04)]:
        y = augment.augment_mr(x, seed, **dict(off, **{key: value})).numpy()
        assert not np.array_equal(y > -1, head), key  # the head's outline moves
    with pytest.raises(ValueError, match="unknown MR augmentation"):
        augment.augment_mr(x, seed, blur=1)


def test_unpaired_dataset_augments_only_the_mr_side():
    us, mr = _images(16), _heads(5, size=16, seed=1)
    plain = _take(unpaired_dataset(us, mr, 4, seed=3), 4)
    extra = _take(unpaired_dataset(us, mr, 4, seed=3, augment_mr=True), 4)
    again = _take(unpaired_dataset(us, mr, 4, seed=3, augment_mr=True), 4)
    assert all(np.array_equal(p[0], e[0]) for p, e in zip(plain, extra))  # US untouched
    assert not all(np.array_equal(p[1], e[1]) for p, e in zip(plain, extra))
    assert all(np.array_equal(x, y) for p, q in zip(extra, again) for x, y in zip(p, q))
    assert all(e[1].min() >= -1 and e[1].max() <= 1 for e in extra)
    # with the shared augmentation as well, and options passed through
    both = _take(unpaired_dataset(us, mr, 4, seed=3, augment=True,
                                  augment_mr={"bias": 0.5, "noise": 0}), 3)
    assert all(b[1].shape == (4, 16, 16, 1) for b in both)
    with pytest.raises(ValueError, match="augment_mr"):
        unpaired_dataset(us, mr, 4, augment_mr="yes")
