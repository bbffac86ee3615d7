import math

import numpy as np
import pytest

from usmr_tf.evaluation import claims


def _cells(per_image, set_value):
    """`{seed: cell}` with a per-image deformation row and a set-level SWD per seed."""
    return {s: {"metrics": {"swd": float(set_value[s])},
                "per_image": {"deformation": list(map(float, per_image[s]))}}
            for s in range(len(per_image))}


def test_bootstrap_interval_covers_the_mean_and_narrows_with_more_images():
    rng = np.random.default_rng(0)
    small = rng.normal(0.1, 0.2, size=(3, 16))
    large = rng.normal(0.1, 0.2, size=(3, 256))
    mean_s, low_s, high_s = claims.bootstrap_interval(small)
    mean_l, low_l, high_l = claims.bootstrap_interval(large)
    assert low_s < mean_s < high_s and low_l < mean_l < high_l
    assert high_l - low_l < high_s - low_s
    assert low_l < 0.1 < high_l
    with pytest.raises(ValueError, match="seeds, images"):
        claims.bootstrap_interval(np.zeros(4))


def test_t_interval_is_infinite_for_one_seed_and_wide_for_three():
    assert claims.t_interval([0.3])[1:] == (-math.inf, math.inf)
    mean, low, high = claims.t_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and low < 0.0 and high > 4.0  # t(0.975, 2) = 4.30: sd 1 -> +-2.48


@pytest.mark.parametrize("low,high,higher,expected", [
    (0.1, 0.3, True, claims.HOLDS), (-0.3, -0.1, True, claims.FAILS),
    (-0.1, 0.2, True, claims.NOISE), (-0.3, -0.1, False, claims.HOLDS),
    (0.1, 0.3, False, claims.FAILS), (-0.1, 0.1, False, claims.NOISE)])
def test_verdict_reads_the_interval_in_the_metrics_direction(low, high, higher, expected):
    assert claims.verdict(low, high, higher) == expected


def test_claims_hold_fail_or_are_noise_on_planted_differences():
    rng = np.random.default_rng(1)
    base = rng.uniform(0.3, 0.7, size=(3, 40))
    noise = lambda: rng.normal(0, 0.02, size=base.shape)  # noqa: E731
    cells = {
        "ours": _cells(base + noise(), [50.0, 52.0, 51.0]),
        "ae": _cells(base + 0.3 + noise(), [90.0, 91.0, 89.0]),  # worse: higher deformation
        "gan": _cells(base - 0.3 + noise(), [20.0, 21.0, 22.0]),  # better than ours
        "cyclegan": _cells(base + noise(), [40.0, 60.0, 53.0]),  # the same
    }
    out = claims.judge_claims(cells, ("deformation", "swd", "psnr"))
    assert set(out) == {"ours_vs_ae", "ours_vs_gan", "ours_vs_cyclegan"}  # ablations absent
    assert out["ours_vs_ae"]["by_metric"]["deformation"]["verdict"] == claims.HOLDS
    assert out["ours_vs_ae"]["by_metric"]["swd"]["verdict"] == claims.HOLDS
    assert out["ours_vs_gan"]["by_metric"]["deformation"]["verdict"] == claims.FAILS
    assert out["ours_vs_gan"]["by_metric"]["swd"]["verdict"] == claims.FAILS
    assert out["ours_vs_cyclegan"]["by_metric"]["deformation"]["verdict"] == claims.NOISE
    assert out["ours_vs_cyclegan"]["by_metric"]["swd"]["verdict"] == claims.NOISE
    assert "psnr" not in out["ours_vs_ae"]["by_metric"]  # no cell has it
    d = out["ours_vs_ae"]["by_metric"]["deformation"]
    assert d["difference"] == pytest.approx(-0.3, abs=0.02) and d["n_images"] == 40
    assert d["n_seeds"] == 3 and d["ci"][0] < d["difference"] < d["ci"][1]


def test_only_seeds_both_models_have_are_paired():
    rng = np.random.default_rng(2)
    ours = _cells(rng.uniform(size=(3, 8)), [1.0, 2.0, 3.0])
    ae = _cells(rng.uniform(size=(2, 8)), [1.0, 2.0])
    out = claims.judge_claims({"ours": ours, "ae": ae}, ("deformation",))
    assert out["ours_vs_ae"]["seeds"] == [0, 1]
    assert out["ours_vs_ae"]["by_metric"]["deformation"]["n_seeds"] == 2


def test_a_metric_without_direction_is_refused():
    with pytest.raises(ValueError, match="no direction"):
        claims.compare([1.0], [2.0], "diversity")
