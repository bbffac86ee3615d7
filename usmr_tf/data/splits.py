"""Deterministic subject-level train/test splits (no subject in two splits)."""

import numpy as np

from usmr_tf.errors import ConfigError


def split_subjects(subjects, test_fraction=0.2, seed=0):
    """Splits unique subject ids into (train, test) sorted lists.

    The ids are sorted, then permuted with `numpy.random.default_rng(seed)`, so the split
    depends only on the set of ids and the seed (not on file order). The test split gets
    `round(test_fraction * n)` subjects, at least one when `0 < test_fraction` and n >= 2,
    and never all of them.
    """
    if not 0.0 <= float(test_fraction) < 1.0:
        raise ConfigError(f"test_fraction must be in [0, 1), got {test_fraction!r}")
    unique = sorted({str(s) for s in subjects})
    n = len(unique)
    n_test = int(round(test_fraction * n))
    if test_fraction > 0 and n >= 2:
        n_test = min(max(n_test, 1), n - 1)
    else:
        n_test = min(n_test, max(n - 1, 0))
    order = np.random.default_rng(seed).permutation(n)
    test = sorted(unique[i] for i in order[:n_test])
    train = sorted(unique[i] for i in order[n_test:])
    return train, test


def split_items(subjects, test_fraction=0.2, seed=0):
    """For a per-item list of subject ids, returns index arrays (train_idx, test_idx)."""
    subjects = [str(s) for s in subjects]
    _, test = split_subjects(subjects, test_fraction, seed)
    test = set(test)
    is_test = np.array([s in test for s in subjects], dtype=bool)
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)
