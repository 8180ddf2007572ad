"""Training seeds from manual labels and seed subsets, and the candidates to label next.

:func:`plan_seeds` turns what a user gave (manual labels, a "clump" and a "not clump"
subset, a pool, a held-out share) into the seed codes a run trains on, with what is
wrong or worth knowing; :func:`uncertain_rows` lists the unlabelled candidates nearest
the threshold (active learning). Qt-free: the train dialog shows the plan, the CLI and
scripts can use it as is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .labels import LABEL_CLUMP, LABEL_NONE, LABEL_NOT_CLUMP

__all__ = ["MIN_SEEDS", "SeedPlan", "plan_seeds", "uncertain_rows"]

#: Fewer seeds than this in a class gives a warning (training warns too).
MIN_SEEDS = 5


@dataclass
class SeedPlan:
    """Training seeds, pool and held-out set of one run, with what is wrong with them.

    Attributes
    ----------
    codes : ndarray
        Per catalogue row: 1 clump seed, 0 not-clump seed, -1 neither (held-out rows,
        rows outside the pool, uncertain and unlabelled rows).
    pool : ndarray or None
        Per-row mask of the candidates trained on; ``None`` is every candidate.
    heldout : (rows, labels) or None
        Labelled rows kept out of training and scored every epoch.
    n_clump, n_not_clump : int
        Seeds in the pool (held-out rows excluded).
    n_pool, n_total : int
        Candidates in the pool and in the catalogue.
    n_conflicts : int
        Rows in both seed subsets (left out).
    errors, warnings : list of str
        Reasons the plan cannot run, and things worth knowing.
    """

    codes: np.ndarray
    pool: np.ndarray | None
    heldout: tuple[np.ndarray, np.ndarray] | None
    n_clump: int
    n_not_clump: int
    n_pool: int
    n_total: int
    n_conflicts: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when training can start."""
        return not self.errors

    @property
    def n_heldout(self) -> int:
        return 0 if self.heldout is None else int(self.heldout[0].size)


def plan_seeds(
    n: int,
    label_codes: np.ndarray | None = None,
    clump_mask: np.ndarray | None = None,
    not_clump_mask: np.ndarray | None = None,
    pool_mask: np.ndarray | None = None,
    holdout_fraction: float = 0.0,
    seed: int = 0,
) -> SeedPlan:
    """Combine manual labels and seed subsets into training seeds for a pool.

    Parameters
    ----------
    n : int
        Number of catalogue rows.
    label_codes : ndarray, optional
        Manual label codes per row (1 clump, 0 not clump, 2 uncertain, -1 none).
    clump_mask, not_clump_mask : ndarray of bool, optional
        Rows of the seed subsets; they override the manual labels, and rows in both
        are left out.
    pool_mask : ndarray of bool, optional
        Rows trained on (seeds outside are not used); ``None``: all rows.
    holdout_fraction : float
        Share of each class's seeds held out for scoring (at least one seed per class
        is kept for training).
    seed : int
        Seed of the held-out draw.

    Returns
    -------
    SeedPlan
    """
    codes = np.full(n, LABEL_NONE, dtype=np.int64)
    if label_codes is not None:
        lab = np.asarray(label_codes).astype(np.int64, copy=False)
        keep = (lab == LABEL_CLUMP) | (lab == LABEL_NOT_CLUMP)
        codes[keep] = lab[keep]
    if clump_mask is not None:
        codes[np.asarray(clump_mask, bool)] = LABEL_CLUMP
    if not_clump_mask is not None:
        codes[np.asarray(not_clump_mask, bool)] = LABEL_NOT_CLUMP
    n_conflicts = 0
    if clump_mask is not None and not_clump_mask is not None:
        both = np.asarray(clump_mask, bool) & np.asarray(not_clump_mask, bool)
        n_conflicts = int(both.sum())
        codes[both] = LABEL_NONE
    in_pool = np.ones(n, bool) if pool_mask is None else np.asarray(pool_mask, bool)
    codes[~in_pool] = LABEL_NONE

    heldout = None
    if holdout_fraction > 0:
        rng = np.random.default_rng(seed)
        rows, labs = [], []
        for cls in (LABEL_CLUMP, LABEL_NOT_CLUMP):
            members = np.flatnonzero(codes == cls)
            k = min(int(math.floor(holdout_fraction * members.size)), members.size - 1)
            if k > 0:
                pick = np.sort(rng.permutation(members)[:k])
                rows.append(pick)
                labs.append(np.full(k, cls, dtype=np.int64))
        if rows:
            held_rows = np.concatenate(rows)
            order = np.argsort(held_rows, kind="stable")
            heldout = (held_rows[order], np.concatenate(labs)[order])
            codes[held_rows] = LABEL_NONE

    n_clump = int(np.sum(codes == LABEL_CLUMP))
    n_not = int(np.sum(codes == LABEL_NOT_CLUMP))
    plan = SeedPlan(codes=codes, pool=None if pool_mask is None else in_pool, heldout=heldout,
                    n_clump=n_clump, n_not_clump=n_not, n_pool=int(in_pool.sum()),
                    n_total=n, n_conflicts=n_conflicts)
    if plan.n_pool == 0:
        plan.errors.append("The pool holds no candidate of this catalogue: choose a subset "
                           "that contains candidates, or train on all candidates.")
    for count, name, key in ((n_clump, "clump", "y"), (n_not, "not clump", "n")):
        if count == 0:
            plan.errors.append(
                f"No '{name}' seed in the pool: both classes need seeds. Label some "
                f"candidates '{name}' (key {key} in the verification viewer) or choose a "
                f"subset of them as '{name}' seeds.")
        elif count < MIN_SEEDS:
            plan.warnings.append(f"Only {count} '{name}' seed(s): at least {MIN_SEEDS} per "
                                 "class is better (the paper used 100-190 per region).")
    if n_conflicts:
        plan.warnings.append(f"{n_conflicts} candidate(s) are in both seed subsets and were "
                             "left out.")
    return plan


def uncertain_rows(p_clump: np.ndarray, threshold: float, labelled: np.ndarray | None = None,
                   limit: int | None = None) -> np.ndarray:
    """Rows of the unlabelled candidates nearest the threshold, most uncertain first.

    Parameters
    ----------
    p_clump : ndarray
        p(clump) per row (NaN rows are skipped).
    threshold : float
        The verdict threshold.
    labelled : ndarray of bool, optional
        Rows that already have a manual label (skipped).
    limit : int, optional
        Return at most this many rows.

    Returns
    -------
    ndarray
        Row indices ordered by ``|p - threshold|`` ascending (ties: catalogue order).
    """
    p = np.asarray(p_clump, dtype=float)
    ok = np.isfinite(p)
    if labelled is not None:
        ok &= ~np.asarray(labelled, bool)
    rows = np.flatnonzero(ok)
    rows = rows[np.argsort(np.abs(p[rows] - threshold), kind="stable")]
    return rows if limit is None else rows[:limit]
