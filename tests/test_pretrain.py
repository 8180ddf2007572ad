"""Synthetic candidate sets, seed picking and sample concatenation."""

from __future__ import annotations

import numpy as np
import pytest

from glue_ssclump.core.pretrain import ConcatSamples, pick_seeds, synthetic_candidate_set
from glue_ssclump.core.samples import ArraySamples


def test_pick_seeds_is_at_most_the_fraction_with_a_floor_per_class():
    y = np.arange(5000) % 3 == 0
    s = pick_seeds(y, fraction=0.01, min_per_class=10, seed=1)
    assert (s >= 0).sum() <= 50 and (s == 1).sum() >= 10 and (s == 0).sum() >= 10
    assert np.all(y[s == 1]) and not np.any(y[s == 0])
    np.testing.assert_array_equal(s, pick_seeds(y, fraction=0.01, min_per_class=10, seed=1))
    small = pick_seeds(np.arange(100) % 2 == 0, fraction=0.01, min_per_class=10)
    assert (small == 1).sum() == 10 and (small == 0).sum() == 10
    with pytest.raises(ValueError, match="too few"):
        pick_seeds(np.array([True] * 30 + [False] * 3))


def test_concat_samples_dispatches_to_its_parts():
    rng = np.random.default_rng(0)
    a = ArraySamples(rng.random((3, 1, 30, 30, 30), dtype=np.float32), ids=np.array([1, 2, 3]))
    b = ArraySamples(rng.random((2, 1, 30, 30, 30), dtype=np.float32), ids=np.array([7, 8]))
    cat = ConcatSamples([a, b])
    assert len(cat) == 5 and cat.ids.tolist() == [1, 2, 3, 7, 8]
    got = cat.get([4, 0, 3])
    np.testing.assert_array_equal(got[0], b.get([1])[0])
    np.testing.assert_array_equal(got[1], a.get([0])[0])
    np.testing.assert_array_equal(got[2], b.get([0])[0])


def test_synthetic_candidate_set_has_both_classes():
    cs = synthetic_candidate_set(7, (24, 48, 48), method="fellwalker")
    assert cs.mask.max() == len(cs.catalog) == cs.is_true.size
    assert 0.0 < cs.false_fraction < 1.0
    batch = cs.samples().get([0, 1])
    assert batch.shape == (2, 1, 30, 30, 30) and batch.min() >= 0 and batch.max() <= 1
