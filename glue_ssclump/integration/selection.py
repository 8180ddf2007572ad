"""Linked brushing between a cube and its candidate catalogue.

Catalogue -> cube needs no code: a subset of catalogue rows (the table viewer's
selection is an ``ElementSubsetState``; any state on catalogue columns works too)
reaches the cube through the ``clump_id`` join and selects exactly the voxels of those
candidates. :func:`select_candidates` makes such a selection from candidate ids.

Cube -> catalogue: a region drawn on the cube in glue's image viewer is a
``RoiSubsetState`` on the cube's pixel axes, extruded through every channel. glue
applies it to the catalogue through the catalogue's links to the cube's coordinates,
i.e. it selects the candidates whose *peak* lies inside the region (see
:mod:`glue_ssclump.integration.links`). :func:`select_candidates_in_region` instead
selects every candidate the region *touches*, optionally on one channel only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from glue.core.data import Data
from glue.core.data_collection import DataCollection
from glue.core.hub import HubListener
from glue.core.message import EditSubsetMessage
from glue.core.subset import ElementSubsetState, SubsetState
from glue.core.subset_group import SubsetGroup

from .pairing import KEY

__all__ = [
    "candidates_in_region",
    "keep_edit_subset",
    "rows_for_ids",
    "select_candidates",
    "select_candidates_in_region",
    "selected_ids",
    "set_subset_group",
]


def rows_for_ids(catalog_data: Data, ids: Iterable[int]) -> np.ndarray:
    """Row indices of the catalogue holding the given candidate ids (sorted rows).

    Ids absent from the catalogue are ignored.
    """
    keys = np.asarray(catalog_data[KEY])
    wanted = np.unique(np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids,
                                  dtype=keys.dtype))
    return np.flatnonzero(np.isin(keys, wanted))


def selected_ids(subset_or_state: object, catalog_data: Data | None = None) -> np.ndarray:
    """Candidate ids selected by a catalogue subset (or a subset state on it).

    Parameters
    ----------
    subset_or_state : Subset or SubsetState
        A subset of the catalogue, or a state to evaluate on ``catalog_data``.
    catalog_data : Data, optional
        Needed when a state is given.

    Returns
    -------
    ndarray
        Sorted unique ids.
    """
    if isinstance(subset_or_state, SubsetState):
        if catalog_data is None:
            raise ValueError("give catalog_data to evaluate a subset state")
        mask = catalog_data.get_mask(subset_or_state)
        data = catalog_data
    else:
        mask = subset_or_state.to_mask()
        data = subset_or_state.data
    return np.unique(np.asarray(data[KEY])[mask])


def set_subset_group(data_collection: DataCollection, label: str,
                     state: SubsetState, color: str | None = None) -> SubsetGroup:
    """Create the subset group ``label`` or, if it exists, give it ``state``.

    The first group with that label is reused, so calling this repeatedly never
    multiplies groups. ``color`` is applied when the group is created only, so a colour
    the user picked later in glue is kept.
    """
    for group in data_collection.subset_groups:
        if group.label == label:
            group.subset_state = state
            return group
    style = {} if color is None else {"color": color}
    with keep_edit_subset(data_collection):
        return data_collection.new_subset_group(label=label, subset_state=state, **style)


class _EditSubsetWatch(HubListener):
    def __init__(self) -> None:
        self.modes: list[Any] = []

    def notify(self, message: EditSubsetMessage) -> None:
        self.modes.append(message.sender)


@contextmanager
def keep_edit_subset(data_collection: DataCollection,
                     edit_subset_mode: Any = None) -> Iterator[None]:
    """Keep subset groups created in this block from becoming glue's edit subset.

    glue-qt selects every new subset group in its data collection panel, and the
    selection becomes the edit subset: the user's next brush would then redefine a
    group glue-ssclump keeps ("SS-3D-Clump: rejected", "Current candidate", a galaxy
    verdict group) instead of making a new subset.  Such a hand-over is undone here:

    * ``edit_subset_mode`` (a session's), if given, gets back the edit subset it had
      before the block whenever the block changed it;
    * any other mode left editing a group created in the block edits none ("new
      subset" mode).

    An edit subset the user chooses outside the block is left alone, and blocks may be
    nested (every group glue-ssclump makes goes through :func:`set_subset_group`).

    Parameters
    ----------
    data_collection : DataCollection
        Where the groups are created (its hub carries glue's edit-subset messages).
    edit_subset_mode : glue.core.edit_subset_mode.EditSubsetMode, optional
        ``session.edit_subset_mode``, whose edit subset is restored.
    """
    groups_before = list(data_collection.subset_groups)
    before = None if edit_subset_mode is None else list(edit_subset_mode.edit_subset)
    watch = _EditSubsetWatch()
    data_collection.hub.subscribe(watch, EditSubsetMessage, handler=watch.notify)
    try:
        yield
    finally:
        data_collection.hub.unsubscribe_all(watch)
    if before is not None and list(edit_subset_mode.edit_subset) != before:
        edit_subset_mode.edit_subset = [g for g in before
                                        if g in data_collection.subset_groups]
    created = [g for g in data_collection.subset_groups if g not in groups_before]
    for mode in dict.fromkeys(watch.modes):  # each edit-subset mode once, in order
        if mode is edit_subset_mode:
            continue
        if any(group in getattr(mode, "edit_subset", ()) for group in created):
            mode.edit_subset = []


def select_candidates(data_collection: DataCollection, catalog_data: Data,
                      ids: Iterable[int], label: str = "Selected candidates") -> SubsetGroup:
    """Select candidates by id: catalogue rows and, through the join, their voxels.

    The state is an ``ElementSubsetState`` on the catalogue rows, the same kind the
    table viewer makes, so glue's own tools treat it like a table selection.

    Parameters
    ----------
    data_collection : DataCollection
    catalog_data : Data
        The catalogue (joined to its cube).
    ids : iterable of int
        Candidate ids.
    label : str
        Subset group label (created once, then updated).

    Returns
    -------
    SubsetGroup
    """
    rows = rows_for_ids(catalog_data, ids)
    state = ElementSubsetState(indices=rows, data=catalog_data)
    return set_subset_group(data_collection, label, state)


def candidates_in_region(cube_data: Data, region: SubsetState,
                         slice_index: int | None = None) -> np.ndarray:
    """Ids of the candidates that a cube region touches.

    Parameters
    ----------
    cube_data : Data
        The cube dataset (with ``clump_id``).
    region : SubsetState
        A state evaluated on the cube, e.g. ``RoiSubsetState`` over its pixel or world
        components (what glue's image viewer makes).
    slice_index : int, optional
        Only this channel (numpy axis 0), as displayed in the image viewer; default:
        every channel.

    Returns
    -------
    ndarray
        Sorted unique candidate ids (> 0).
    """
    view = None if slice_index is None else (int(slice_index), slice(None), slice(None))
    mask = np.asarray(cube_data.get_mask(region, view=view), dtype=bool)
    cube_mask = cube_data.get_data(cube_data.id[KEY], view=view)
    ids = np.unique(cube_mask[mask])
    return ids[ids > 0]


def select_candidates_in_region(
    data_collection: DataCollection,
    cube_data: Data,
    catalog_data: Data,
    region: SubsetState,
    slice_index: int | None = None,
    label: str = "Candidates in region",
) -> SubsetGroup:
    """Select the catalogue rows (and voxels) of every candidate a region touches.

    Parameters
    ----------
    data_collection : DataCollection
    cube_data, catalog_data : Data
        The joined pair.
    region : SubsetState
        Region on the cube (see :func:`candidates_in_region`).
    slice_index : int, optional
        Restrict the region to one channel.
    label : str
        Subset group label (created once, then updated).

    Returns
    -------
    SubsetGroup
    """
    ids = candidates_in_region(cube_data, region, slice_index)
    return select_candidates(data_collection, catalog_data, ids, label=label)
