"""core.seeds: seed planning for a training run, and the candidates to label next."""

from __future__ import annotations

import numpy as np

from glue_ssclump.core.seeds import plan_seeds, uncertain_rows


def test_plan_seeds_combines_labels_and_subsets():
    labels = np.array([1, 0, 2, -1, 1, -1, 0, -1])
    clump = np.array([0, 0, 0, 1, 0, 0, 0, 1], bool)
    not_clump = np.array([0, 0, 0, 0, 0, 1, 0, 1], bool)  # row 7 in both
    plan = plan_seeds(8, labels, clump, not_clump)
    assert plan.codes.tolist() == [1, 0, -1, 1, 1, 0, 0, -1]
    assert (plan.n_clump, plan.n_not_clump, plan.n_conflicts) == (3, 3, 1)
    assert plan.ok and any("both seed subsets" in w for w in plan.warnings)
    assert any("Only 3 'clump'" in w for w in plan.warnings)

    pool = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    plan = plan_seeds(8, labels, clump, not_clump, pool_mask=pool)
    assert (plan.n_clump, plan.n_not_clump, plan.n_pool) == (2, 1, 4)
    assert plan.codes[~pool].tolist() == [-1, -1, -1, -1]

    plan = plan_seeds(8, np.where(labels == 0, -1, labels))
    assert not plan.ok and "No 'not clump' seed" in plan.errors[0]
    plan = plan_seeds(8, labels, pool_mask=np.zeros(8, bool))
    assert any("pool holds no candidate" in e for e in plan.errors)


def test_plan_seeds_holdout_keeps_a_seed_per_class():
    labels = np.array([1] * 10 + [0] * 3 + [-1] * 5)
    plan = plan_seeds(labels.size, labels, holdout_fraction=0.5, seed=3)
    rows, held = plan.heldout
    assert (np.sum(held == 1), np.sum(held == 0)) == (5, 1)
    assert np.all(plan.codes[rows] == -1)  # held-out rows never seed
    assert np.array_equal(labels[rows], held)
    assert (plan.n_clump, plan.n_not_clump) == (5, 2)
    again = plan_seeds(labels.size, labels, holdout_fraction=0.5, seed=3)
    assert np.array_equal(again.heldout[0], rows)
    one = plan_seeds(3, np.array([1, 0, -1]), holdout_fraction=0.9)
    assert one.heldout is None and (one.n_clump, one.n_not_clump) == (1, 1)


def test_uncertain_rows_order_and_filters():
    p = np.array([0.9, 0.52, np.nan, 0.45, 0.1, 0.49])
    labelled = np.array([0, 0, 0, 0, 0, 1], bool)
    assert uncertain_rows(p, 0.5, labelled).tolist() == [1, 3, 0, 4]
    assert uncertain_rows(p, 0.5, labelled, limit=2).tolist() == [1, 3]
    assert uncertain_rows(p, 0.8).tolist() == [0, 1, 5, 3, 4]
