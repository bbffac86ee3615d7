import numpy as np
import pytest

from usmr_tf.data.splits import split_items, split_subjects
from usmr_tf.errors import ConfigError


def test_split_is_80_20_disjoint_and_complete():
    ids = [f"s{i:03d}" for i in range(50)]
    train, test = split_subjects(ids)
    assert len(test) == 10 and len(train) == 40
    assert not set(train) & set(test) and set(train) | set(test) == set(ids)


def test_split_is_deterministic_and_order_independent():
    ids = [f"s{i}" for i in range(30)]
    assert split_subjects(ids, seed=3) == split_subjects(list(reversed(ids)), seed=3)
    assert split_subjects(ids, seed=3) != split_subjects(ids, seed=4)


def test_items_of_one_subject_never_cross_splits():
    subjects = ["010", "010", "012", "014", "014", "014"] + [f"{i:03d}" for i in range(20, 60, 2)]
    train, test = split_items(subjects, 0.2, seed=0)
    assert len(train) + len(test) == len(subjects)
    assert not {subjects[i] for i in train} & {subjects[i] for i in test}
    assert len(test) > 0


def test_small_and_invalid_cases():
    assert split_subjects(["a"]) == (["a"], [])
    assert split_subjects(["a", "b"])[1] != []  # at least one test subject
    assert split_subjects(["a", "b", "c"], test_fraction=0.0) == (["a", "b", "c"], [])
    with pytest.raises(ConfigError):
        split_subjects(["a", "b"], test_fraction=1.0)
    assert np.array_equal(split_items([], 0.2)[0], [])
