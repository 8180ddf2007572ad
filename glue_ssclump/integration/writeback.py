"""SS-3D-Clump results and manual labels written back into the catalogue dataset.

:func:`write_verdicts` stores ``p_clump`` (float), ``verdict`` (categorical:
``clump`` / ``rejected`` / ``uncertain``, ``''`` = not verified) and ``label`` (int
code: 1 clump, 0 not clump, 2 uncertain, -1 none) as catalogue components, in place,
and keeps five subset groups up to date. The groups are defined on the catalogue's
columns and reach the cube through the ``clump_id`` join, so the image viewer shows
the voxels of e.g. every rejected candidate.

The verdict categories and their groups are a :class:`VerdictScheme`: SS-3D-Clump's
(:data:`SS3D_SCHEME`, the default) or another system's, such as the galaxy clumps'
clump / odd / rejected (:mod:`glue_ssclump.integration.galaxy_verdicts`).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import numpy as np
from glue.core.component import CategoricalComponent, Component
from glue.core.data import Data
from glue.core.data_collection import DataCollection
from glue.core.decorators import clear_cache
from glue.core.message import NumericalDataChangedMessage
from glue.core.subset import CategorySubsetState, InequalitySubsetState
from glue.core.subset_group import SubsetGroup
from glue.utils.array import categorical_ndarray

from ..core.labels import (
    LABEL_CLUMP,
    LABEL_COLOURS,
    LABEL_NONE,
    LABEL_NOT_CLUMP,
    LABEL_UNCERTAIN,
    VERDICTS,
)
from .pairing import KEY, component
from .selection import set_subset_group

__all__ = [
    "GROUP_CLUMPS",
    "GROUP_LABELLED_CLUMP",
    "GROUP_LABELLED_NOT_CLUMP",
    "GROUP_REJECTED",
    "GROUP_UNCERTAIN",
    "LABEL",
    "P_CLUMP",
    "VERDICT",
    "VERDICTS",
    "SS3D_SCHEME",
    "VerdictScheme",
    "update_verdict_subsets",
    "write_verdicts",
]

P_CLUMP = "p_clump"
VERDICT = "verdict"
LABEL = "label"
#: Verdict categories; ``''`` marks a candidate without a verdict.

GROUP_CLUMPS = "SS-3D-Clump: clumps"
GROUP_REJECTED = "SS-3D-Clump: rejected"
GROUP_UNCERTAIN = "SS-3D-Clump: uncertain"
GROUP_LABELLED_CLUMP = "Labelled: clump"
GROUP_LABELLED_NOT_CLUMP = "Labelled: not clump"

#: (group, verdict, the label code whose colour it wears)
_VERDICT_GROUPS = ((GROUP_CLUMPS, "clump", LABEL_CLUMP),
                   (GROUP_REJECTED, "rejected", LABEL_NOT_CLUMP),
                   (GROUP_UNCERTAIN, "uncertain", LABEL_UNCERTAIN))
_LABEL_GROUPS = ((GROUP_LABELLED_CLUMP, LABEL_CLUMP), (GROUP_LABELLED_NOT_CLUMP, LABEL_NOT_CLUMP))
_LABEL_CODES = (LABEL_NONE, LABEL_NOT_CLUMP, LABEL_CLUMP, LABEL_UNCERTAIN)


@dataclass(frozen=True)
class VerdictScheme:
    """The verdicts of one kind of catalogue and the subset groups that show them.

    Attributes
    ----------
    verdicts : tuple of str
        The categories of the ``verdict`` column (``''``, no verdict, comes first).
    groups : tuple of (str, str, str)
        ``(group label, verdict, colour)`` of each subset group kept up to date; the
        colour is applied when the group is created.
    """

    verdicts: tuple[str, ...]
    groups: tuple[tuple[str, str, str], ...]

    @property
    def categories(self) -> np.ndarray:
        """The ``verdict`` column's categories: ``''`` then :attr:`verdicts`."""
        return np.array(("",) + tuple(self.verdicts))


#: SS-3D-Clump's verdicts on PPV candidates (what :func:`write_verdicts` uses by default).
SS3D_SCHEME = VerdictScheme(VERDICTS, tuple((group, value, LABEL_COLOURS[code])
                                            for group, value, code in _VERDICT_GROUPS))


def _rows(catalog_data: Data, clump_id: np.ndarray | None, n_values: int) -> np.ndarray | None:
    """Row of each given value (``None``: values are already in row order)."""
    if clump_id is None:
        if n_values != catalog_data.size:
            raise ValueError(
                f"got {n_values} values for a catalogue of {catalog_data.size} rows; give "
                "one value per row, or pass clump_id= to say which candidates they are for"
            )
        return None
    clump_id = np.asarray(clump_id).ravel()
    if clump_id.size != n_values:
        raise ValueError(f"clump_id has {clump_id.size} entries but {n_values} values were given")
    keys = np.asarray(catalog_data[KEY])
    order = np.argsort(keys, kind="stable")
    pos = np.searchsorted(keys, clump_id, sorter=order)
    pos = np.clip(pos, 0, keys.size - 1)
    rows = order[pos]
    bad = keys[rows] != clump_id
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} clump_id(s) are not in catalogue {catalog_data.label!r} "
            f"(e.g. {clump_id[bad][:5].tolist()}); were the results made for another "
            "detection run?"
        )
    return rows


def _merged(current: np.ndarray | None, values: np.ndarray, rows: np.ndarray | None,
            fill: Any, dtype: Any, n: int) -> np.ndarray:
    if rows is None:
        return np.asarray(values, dtype=dtype).copy()
    out = np.full(n, fill, dtype=dtype) if current is None else np.array(current, dtype=dtype)
    out[rows] = values
    return out


def write_verdicts(
    data_collection: DataCollection,
    catalog_data: Data,
    p_clump: np.ndarray | None = None,
    verdict: np.ndarray | None = None,
    label: np.ndarray | None = None,
    clump_id: np.ndarray | None = None,
    scheme: VerdictScheme = SS3D_SCHEME,
) -> dict[str, SubsetGroup]:
    """Write SS-3D-Clump results and manual labels into the catalogue, in place.

    Existing ``p_clump`` / ``verdict`` / ``label`` components are updated (component ids
    stay, so viewers and subsets follow); missing ones are added. Calling this again
    never duplicates components or subset groups.

    Parameters
    ----------
    data_collection : DataCollection
        The session's data collection (holds the subset groups).
    catalog_data : Data
        The catalogue dataset.
    p_clump : array of float, optional
        Probability of being a clump, per candidate.
    verdict : array of str, optional
        ``'clump'``, ``'rejected'``, ``'uncertain'`` or ``''`` (none), per candidate.
    label : array of int, optional
        Manual label codes: 1 clump, 0 not clump, 2 uncertain, -1 none.
    clump_id : array of int, optional
        The candidates the arrays refer to (any order, any subset of the catalogue);
        rows not named keep their current values (new components start as NaN, ``''``
        and -1). Default: the arrays are in catalogue row order, one value per row.
    scheme : VerdictScheme
        Allowed verdicts and their subset groups; default SS-3D-Clump's.

    Returns
    -------
    dict
        Subset group label -> :class:`~glue.core.subset_group.SubsetGroup` for the
        groups maintained (verdict groups once a verdict exists, label groups once a
        label exists).

    Raises
    ------
    ValueError
        Wrong lengths, unknown verdicts or label codes, or ids not in the catalogue.
    """
    if catalog_data not in data_collection:
        raise ValueError(f"dataset {catalog_data.label!r} is not in this data collection")
    n = catalog_data.size
    numeric: dict[Any, np.ndarray] = {}
    new_components: list[tuple[str, Component]] = []

    if p_clump is not None:
        values = np.asarray(p_clump, dtype=float).ravel()
        rows = _rows(catalog_data, clump_id, values.size)
        cid = component(catalog_data, P_CLUMP)
        current = None if cid is None else catalog_data[cid]
        merged = _merged(current, values, rows, np.nan, float, n)
        if cid is None:
            new_components.append((P_CLUMP, Component(merged)))
        else:
            numeric[cid] = merged

    if label is not None:
        values = np.asarray(label).ravel()
        if values.size and not np.isin(values, _LABEL_CODES).all():
            raise ValueError(f"label codes must be one of {_LABEL_CODES}; got "
                             f"{sorted(set(np.unique(values).tolist()) - set(_LABEL_CODES))}")
        rows = _rows(catalog_data, clump_id, values.size)
        cid = component(catalog_data, LABEL)
        current = None if cid is None else catalog_data[cid]
        merged = _merged(current, values, rows, LABEL_NONE, np.int64, n)
        if cid is None:
            new_components.append((LABEL, Component(merged)))
        else:
            numeric[cid] = merged

    verdict_changed = None
    if verdict is not None:
        values = np.asarray(verdict, dtype=str).ravel()
        categories = scheme.categories
        unknown = set(np.unique(values).tolist()) - set(categories.tolist())
        if unknown:
            raise ValueError(f"verdicts must be one of {scheme.verdicts} (or '' for none); "
                             f"got {sorted(unknown)}")
        rows = _rows(catalog_data, clump_id, values.size)
        cid = component(catalog_data, VERDICT)
        current = None if cid is None else np.asarray(
            catalog_data.get_component(cid).labels, dtype=str)
        merged = _merged(current, values, rows, "", categories.dtype, n)
        if cid is None:
            new_components.append((VERDICT, CategoricalComponent(merged, categories=categories)))
        else:
            comp = catalog_data.get_component(cid)
            # Data.update_components turns the array into a plain ndarray (np.asarray),
            # which would drop the categories/codes of a CategoricalComponent, so the
            # categorical data are replaced here and the change broadcast below.
            comp._data = categorical_ndarray(merged, copy=False, categories=categories)
            comp.jitter(method=comp.jitter_method)
            verdict_changed = cid

    hub = data_collection.hub
    with hub.delay_callbacks():
        for name, comp in new_components:
            catalog_data.add_component(comp, name)
        if numeric:
            catalog_data.update_components(numeric)
        if verdict_changed is not None:
            hub.broadcast(NumericalDataChangedMessage(catalog_data,
                                                      components_changed=[verdict_changed]))
            for subset in catalog_data.subsets:
                clear_cache(subset.subset_state.to_mask)
        groups = update_verdict_subsets(data_collection, catalog_data, scheme)
    return groups


def update_verdict_subsets(data_collection: DataCollection, catalog_data: Data,
                           scheme: VerdictScheme = SS3D_SCHEME) -> dict[str, SubsetGroup]:
    """(Re)define the verdict and label subset groups on a catalogue's columns.

    New state objects are set on every call: glue memoises ``to_mask`` per state
    object, so reusing a state after the columns changed could show stale masks.
    ``scheme`` names the verdict groups (default SS-3D-Clump's).

    Returns
    -------
    dict
        Group label -> SubsetGroup, for the groups whose column exists.
    """
    groups: dict[str, SubsetGroup] = {}
    vcid = component(catalog_data, VERDICT)
    if vcid is not None:
        categories = list(np.asarray(catalog_data.get_component(vcid).categories).tolist())
        for group_label, value, colour in scheme.groups:
            codes = [categories.index(value)] if value in categories else []
            groups[group_label] = set_subset_group(
                data_collection, group_label, CategorySubsetState(vcid, codes), color=colour)
    lcid = component(catalog_data, LABEL)
    if lcid is not None:
        for group_label, code in _LABEL_GROUPS:
            groups[group_label] = set_subset_group(
                data_collection, group_label,
                InequalitySubsetState(lcid, int(code), operator.eq),
                color=LABEL_COLOURS[code])
    return groups
