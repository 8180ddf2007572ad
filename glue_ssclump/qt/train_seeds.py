"""The train dialog's seeds, pool and held-out set, from its glue choices.

Qt-free: reads the catalogue and subset groups chosen in a
:class:`~glue_ssclump.qt.train_state.TrainState` and hands them to
:func:`~glue_ssclump.core.seeds.plan_seeds`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from glue.core.data import Data
from glue.core.exceptions import IncompatibleAttribute

from ..core.seeds import SeedPlan, plan_seeds
from ..integration.pairing import KEY, cube_data_for
from ..integration.selection import candidates_in_region
from ..integration.writeback import LABEL
from .train_state import TrainState

__all__ = ["plan_for", "subset_mask"]


def subset_mask(group: Any, catalog: Data) -> np.ndarray:
    """Catalogue rows selected by a subset group.

    As glue applies it to the catalogue (a region drawn on the cube selects the
    candidates whose peak lies inside, through the catalogue's links); where the
    catalogue cannot evaluate it, the candidates the region touches in the cube.

    Parameters
    ----------
    group : glue.core.subset_group.SubsetGroup
    catalog : Data
        The candidate catalogue.

    Returns
    -------
    ndarray of bool
        One value per catalogue row.

    Raises
    ------
    ValueError
        When neither the catalogue nor its cube can evaluate the subset.
    """
    subset = next((s for s in group.subsets if s.data is catalog), None)
    if subset is not None:
        try:
            return np.asarray(subset.to_mask(), dtype=bool)
        except IncompatibleAttribute:
            pass
    cube = cube_data_for(catalog)
    if cube is not None:
        try:
            ids = candidates_in_region(cube, group.subset_state)
        except IncompatibleAttribute:
            ids = None
        if ids is not None:
            return np.isin(np.asarray(catalog[KEY]), ids)
    raise ValueError(f"the subset {group.label!r} cannot be applied to the catalogue "
                     f"{catalog.label!r} or its cube")


def plan_for(state: TrainState) -> SeedPlan | None:
    """Seeds, pool and held-out set from the dialog's current choices.

    Parameters
    ----------
    state : TrainState

    Returns
    -------
    SeedPlan or None
        ``None`` when no catalogue is chosen.

    Raises
    ------
    ValueError
        When a chosen subset cannot be applied to the catalogue.
    """
    cat = state.catalog_data
    if cat is None:
        return None
    labels = None
    if state.use_labels and LABEL in {c.label for c in cat.main_components}:
        labels = np.asarray(cat[LABEL])
    masks = {}
    for name in ("clump_subset", "not_clump_subset", "pool_subset"):
        group = getattr(state, name)
        masks[name] = None if group is None else subset_mask(group, cat)
    plan = plan_seeds(cat.size, labels, masks["clump_subset"], masks["not_clump_subset"],
                      masks["pool_subset"], float(state.holdout_percent) / 100.0,
                      int(state.seed))
    if not state.use_labels and masks["clump_subset"] is None \
            and masks["not_clump_subset"] is None:
        plan.errors.insert(0, "Choose where the seeds come from: the manual labels "
                              "and/or the seed subsets.")
    return plan
