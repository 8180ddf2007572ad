"""Verdicts on galaxy clumps: ``clump`` / ``odd`` / ``rejected`` as a column and subset groups.

The write-back is :func:`glue_ssclump.integration.writeback.write_verdicts` with the
galaxy :data:`GALAXY_SCHEME`: a categorical ``verdict`` column on the clump catalogue
(``''`` = none) kept in place, and three subset groups defined on it. The groups are
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
    "GALAXY_SCHEME",
    "GALAXY_VERDICTS",
    "GROUP_GALAXY_CLUMP",
    "GROUP_GALAXY_ODD",
    "GROUP_GALAXY_REJECTED",
    "set_verdict",
    "update_galaxy_subsets",
    "verdicts_of",
    "write_galaxy_verdicts",
]

#: Verdicts on a galaxy clump ('' = none).
GALAXY_VERDICTS = ("clump", "odd", "rejected")
GROUP_GALAXY_CLUMP = "Galaxy clumps: clump"
GROUP_GALAXY_ODD = "Galaxy clumps: odd"
GROUP_GALAXY_REJECTED = "Galaxy clumps: rejected"

#: The galaxy side's verdicts and groups: clump green, odd orange, rejected red.
GALAXY_SCHEME = VerdictScheme(
    GALAXY_VERDICTS,
    ((GROUP_GALAXY_CLUMP, "clump", LABEL_COLOURS[LABEL_CLUMP]),
     (GROUP_GALAXY_ODD, "odd", LABEL_COLOURS[LABEL_UNCERTAIN]),
     (GROUP_GALAXY_REJECTED, "rejected", LABEL_COLOURS[LABEL_NOT_CLUMP])),
)


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
                          clump_id=ids, scheme=GALAXY_SCHEME)


def update_galaxy_subsets(data_collection: DataCollection,
                          clump_data: Data) -> dict[str, SubsetGroup]:
    """(Re)define the three verdict groups on a clump catalogue's ``verdict`` column."""
    return update_verdict_subsets(data_collection, clump_data, GALAXY_SCHEME)


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
