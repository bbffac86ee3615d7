import numpy as np
import pytest

from usmr_tf.metrics import deformation, synthetic

SIZE = 64


@pytest.fixture(scope="module")
def head():
    return synthetic.head_phantom(SIZE, seed=1)


def _warped(image, amplitude, seed=0):
    return synthetic.warp(image, synthetic.smooth_displacement(SIZE, amplitude, seed=seed))


def test_identical_images_score_about_zero(head):
    assert deformation.deformation_score(head, head) < 0.05


def test_stronger_warp_scores_higher(head):
    scores = [deformation.deformation_score(_warped(head, a), head) for a in (0.5, 1.5, 3.0, 5.0)]
    assert all(b > a for a, b in zip(scores, scores[1:])), scores
    assert scores[0] > 0.05 and scores[-1] > 0.6


def test_swapping_fixed_and_moving_gives_a_similar_score(head):
    for amplitude in (1.0, 3.0):
        moved = _warped(head, amplitude, seed=2)
        forward = deformation.deformation_score(moved, head)
        backward = deformation.deformation_score(head, moved)
        assert abs(forward - backward) < 0.1, (amplitude, forward, backward)


def test_range_and_unrelated_images(head):
    rng = np.random.default_rng(0)
    noise = rng.uniform(-1, 1, (SIZE, SIZE)).astype(np.float32)
    other = synthetic.head_phantom(SIZE, seed=7)
    for moving in (noise, other, -head):
        score = deformation.deformation_score(moving, head)
        assert 0.0 <= score <= 1.0
    assert deformation.deformation_score(other, head) > deformation.deformation_score(
        _warped(head, 0.5), head)


def test_normalise_is_monotone_into_unit_interval():
    values = [deformation.normalise(x) for x in (0.0, 0.01, 0.1, 1.0, 100.0)]
    assert values[0] == 0.0 and values[-1] <= 1.0
    assert all(b > a for a, b in zip(values[:-1], values[1:-1]))


def test_jacobian_of_a_known_scaling():
    import SimpleITK as sitk

    scale = sitk.ScaleTransform(2, (1.1, 0.9))
    det = deformation.jacobian_determinant(scale, np.zeros((16, 16)))
    np.testing.assert_allclose(det, 1.1 * 0.9, rtol=1e-6)


def test_match_plane_picks_the_right_slice():
    candidates = np.stack([synthetic.head_phantom(SIZE, seed=s) for s in (3, 4, 5, 6)])
    # the query is candidate 2, moved and slightly warped
    query = _warped(np.roll(candidates[2], (3, -2), axis=(0, 1)), 1.0)
    index, nmi = deformation.match_plane(query, candidates, top_k=2)
    assert index == 2 and 1.0 <= nmi <= 2.0


def test_deformation_scores_over_a_set(head):
    real = np.stack([synthetic.head_phantom(SIZE, seed=s) for s in (1, 9)])
    synth = np.stack([head, _warped(head, 3.0)])[..., None]
    result = deformation.deformation_scores(synth, real, top_k=1)
    assert list(result["matched"]) == [0, 0]
    assert result["scores"][0] < 0.05 < result["scores"][1]
    assert result["nmi"][0] > result["nmi"][1] > 1.0
    assert result["mean"] == pytest.approx(result["scores"].mean())


def test_registration_nmi_flags_unregistrable_images(head):
    noise = np.random.default_rng(1).uniform(-1, 1, (SIZE, SIZE)).astype(np.float32)
    good = deformation.register_pair(_warped(head, 2.0), head)
    bad = deformation.register_pair(noise, head)
    assert 1.0 <= bad["nmi"] < good["nmi"] <= 2.0
    assert good["score"] == deformation.normalise(good["mean_abs_log_jac"])


def test_scores_are_reproducible(head):
    other = synthetic.head_phantom(SIZE, seed=7)
    assert deformation.deformation_score(other, head) == deformation.deformation_score(other, head)


def test_equalise_makes_the_score_blind_to_the_moving_images_contrast(head):
    moved = _warped(head, 2.0, seed=3)
    mask = deformation.foreground_mask(moved)
    faint = np.where(mask, 0.3 * moved, -1.0).astype("float32")  # same anatomy, 0.3x contrast
    equalised = deformation.RegistrationConfig(equalise=True)
    a = deformation.deformation_score(moved, head, equalised)
    b = deformation.deformation_score(faint, head, equalised)
    assert a == pytest.approx(b, abs=1e-6)  # contrast does not reach the equalised score
    assert a > 2 * deformation.deformation_score(head, head, equalised)  # the warp still does
    ranks = deformation.rank_equalise(faint)
    np.testing.assert_array_equal(ranks, deformation.rank_equalise(moved))
    assert ranks.min() == -1.0 and ranks.max() == pytest.approx(1.0)
    blank = np.where(mask, 0.0, -1.0).astype("float32")
    assert len(np.unique(deformation.rank_equalise(blank))) == 2  # background and one grey
