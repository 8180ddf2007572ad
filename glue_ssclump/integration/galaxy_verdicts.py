"""Verdicts on galaxy clumps: ``clump`` / ``odd`` / ``rejected`` as a column and subset groups.

The write-back is :func:`glue_ssclump.integration.writeback.write_verdicts` with the
catalogue's :func:`galaxy_scheme`: a categorical ``verdict`` column on the clump
catalogue (``''`` = none) kept in place, and three subset groups defined on it,
"NAME clumps: clump", "NAME clumps: odd" and "NAME clumps: rejected" (one set per
catalogue, so several galaxies in one session keep their own groups). The groups are
subsets of the catalogue (a ``RegionData``), so glue's image viewer draws the boxes of
each group in the group's colour: clump green, odd orange, rejected red (the colours of
the cube side's clump / uncertain / rejected).

The detector's own class (``clump`` or ``odd``) is the initial verdict; a person
changes it for selected rows with :func:`set_verdict` (the galaxy dialog's buttons).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from glue.core.data import Data
from glue.core.data_collection import DataCollection
from glue.core.subset_group import SubsetGroup

from ..core.labels import LABEL_CLUMP, LABEL_COLOURS, LABEL_NOT_CLUMP, LABEL_UNCERTAIN
from .factory import KEY
from .writeback import VERDICT, VerdictScheme, update_verdict_subsets, write_verdicts

__all__ = [
    "GALAXY_CATEGORIES",
    "GALAXY_COLOURS",
    "GALAXY_VERDICTS",
    "galaxy_scheme",
    "group_label",
    "group_labels",
    "set_verdict",
    "update_galaxy_subsets",
    "verdicts_of",
    "write_galaxy_verdicts",
]

#: Verdicts on a galaxy clump ('' = none).
GALAXY_VERDICTS = ("clump", "odd", "rejected")
#: Categories of the ``verdict`` column.
GALAXY_CATEGORIES = np.array(("",) + GALAXY_VERDICTS)
#: Group colours: clump green, odd orange, rejected red.
GALAXY_COLOURS = {"clump": LABEL_COLOURS[LABEL_CLUMP], "odd": LABEL_COLOURS[LABEL_UNCERTAIN],
                  "rejected": LABEL_COLOURS[LABEL_NOT_CLUMP]}
# Data.meta key: the groups' name prefix, fixed when first used (a renamed dataset keeps
# its groups; a re-detection, which makes a catalogue of the same label, reuses them).
META_GROUPS = "ssclump_group_prefix"


def group_label(clump_data: Data, verdict: str) -> str:
    """The subset group of one verdict on one catalogue: ``"NAME clumps: odd"``."""
    prefix = clump_data.meta.get(META_GROUPS) or clump_data.label
    return f"{prefix}: {verdict}"


def group_labels(clump_data: Data) -> dict[str, str]:
    """Verdict -> subset group label, for one catalogue."""
    return {verdict: group_label(clump_data, verdict) for verdict in GALAXY_VERDICTS}


def galaxy_scheme(clump_data: Data) -> VerdictScheme:
    """The verdicts and (this catalogue's) groups for :func:`write_verdicts`."""
    clump_data.meta.setdefault(META_GROUPS, clump_data.label)
    return VerdictScheme(GALAXY_VERDICTS, tuple(
        (group_label(clump_data, v), v, GALAXY_COLOURS[v]) for v in GALAXY_VERDICTS))


def write_galaxy_verdicts(data_collection: DataCollection, clump_data: Data,
                          verdict: Iterable[str],
                          clump_id: Iterable[int] | None = None) -> dict[str, SubsetGroup]:
    """Write verdicts into a clump catalogue, in place, and update the three groups.

    Parameters
    ----------
    data_collection : DataCollection
        Holds ``clump_data`` and the groups.
    clump_data : Data
        The galaxy clump catalogue.
    verdict : iterable of str
        ``'clump'``, ``'odd'``, ``'rejected'`` or ``''``.
    clump_id : iterable of int, optional
        Which clumps the verdicts are for; default one per row, in row order.

    Returns
    -------
    dict
        Group label -> SubsetGroup.

    Raises
    ------
    ValueError
        Unknown verdicts, wrong lengths or ids not in the catalogue.
    """
    ids = None if clump_id is None else np.asarray(list(clump_id), dtype=np.int64)
    return write_verdicts(data_collection, clump_data, verdict=np.asarray(list(verdict), str),
                          clump_id=ids, scheme=galaxy_scheme(clump_data))


def update_galaxy_subsets(data_collection: DataCollection,
                          clump_data: Data) -> dict[str, SubsetGroup]:
    """(Re)define a catalogue's three verdict groups on its ``verdict`` column."""
    return update_verdict_subsets(data_collection, clump_data, galaxy_scheme(clump_data))


def set_verdict(data_collection: DataCollection, clump_data: Data, rows: Iterable[int] | np.ndarray,
                verdict: str) -> int:
    """Give the clumps of some catalogue rows one verdict (a person's decision).

    Parameters
    ----------
    data_collection : DataCollection
    clump_data : Data
        The clump catalogue.
    rows : iterable of int or bool mask
        Row indices, or a boolean mask over the rows (a subset's ``to_mask()``).
    verdict : str
        ``'clump'``, ``'odd'``, ``'rejected'`` or ``''``.

    Returns
    -------
    int
        How many clumps were given the verdict.
    """
    rows = np.asarray(rows)
    if rows.dtype == bool:
        rows = np.flatnonzero(rows)
    if rows.size == 0:
        return 0
    ids = np.asarray(clump_data[KEY])[rows.astype(np.int64)]
    write_galaxy_verdicts(data_collection, clump_data, [verdict] * ids.size, clump_id=ids)
    return int(ids.size)


def verdicts_of(clump_data: Data) -> np.ndarray:
    """The ``verdict`` column as strings (all ``''`` when it does not exist yet)."""
    for cid in clump_data.main_components:
        if cid.label == VERDICT:
            return np.asarray(clump_data.get_component(cid).labels, dtype=str)
    return np.full(clump_data.size, "", dtype="<U8")
