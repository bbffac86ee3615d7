import numpy as np
import pytest

from usmr_tf.errors import DataError
from usmr_tf.metrics import carryover as co
from usmr_tf.metrics import synthetic


def _heads(n=4, size=64, seed=0):
    return np.stack([synthetic.head_phantom(size, seed=seed + i) for i in range(n)])


def test_the_us_passed_through_carries_everything_its_negative_the_opposite():
    us = _heads()
    same = co.carryover(us, us)
    assert same["corr"] == pytest.approx(1.0) and same["n"] == len(us)
    assert same["bright_us_percentile"] > 0.8  # its bright pixels are its brightest ones
    head = us > -0.9
    negative = np.where(head, -us, -1.0)  # brightness inverted inside the head
    inverted = co.carryover(us, negative, erode=4)
    assert inverted["corr"] == pytest.approx(-1.0)
    assert inverted["bright_us_percentile"] < 0.3


def test_unrelated_texture_sits_near_the_middle_of_the_us_ranking():
    us = _heads()
    rng = np.random.default_rng(0)
    noise = np.where(us > -0.9, rng.uniform(-1, 1, us.shape), -1.0).astype(np.float32)
    r = co.carryover(us, noise, erode=4, bright=0.0)
    assert abs(r["corr"]) < 0.1 and 0.4 < r["bright_us_percentile"] < 0.6
    assert r["bright_share"] == pytest.approx(0.5, abs=0.05)
    assert co.bright_share(noise, erode=4, bright=0.0)["bright_share"] == pytest.approx(
        r["bright_share"], abs=0.05)


def test_bad_input_is_refused():
    us = _heads(2)
    with pytest.raises(ValueError, match="synthesized"):
        co.carryover(us, us[:1])
    with pytest.raises(DataError):
        co.carryover(us, np.full_like(us, np.nan))


def test_no_head_gives_none_not_nan():
    blank = np.full((2, 32, 32), -1.0, np.float32)
    r = co.carryover(blank, blank)
    assert r["n"] == 0 and r["corr"] is None and r["bright_share"] is None
    assert co.bright_share(blank)["bright_share"] is None
