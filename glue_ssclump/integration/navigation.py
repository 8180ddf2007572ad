"""Navigation through a candidate catalogue: the order, positions and moves (no Qt).

The verification viewer (:mod:`glue_ssclump.qt.viewer`) shows one candidate at a time
and moves through the catalogue in an order chosen in its options panel.  What that
order is, where a candidate sits in it, which candidate "next" or "previous" reaches
and which candidate a glue selection points at is worked out here, on numpy arrays and
glue-core objects only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from glue.core.data import BaseData
from glue.core.subset import ElementSubsetState, SliceSubsetState

from ..core.labels import LABEL_NONE
from .pairing import KEY, component
from .writeback import LABEL, P_CLUMP

__all__ = [
    "CatalogView",
    "Navigation",
    "check_navigation_ids",
    "follow_row",
    "ids_selected_by",
    "id_list",
]


class CatalogView:
    """Arrays of a catalogue dataset that navigation and labelling need.

    Parameters
    ----------
    data : glue Data
        The candidate catalogue (with ``clump_id``).
    """

    def __init__(self, data: BaseData) -> None:
        self.data = data
        self.ids: np.ndarray | None = None
        self.refresh()

    def refresh(self) -> None:
        """Read the ids again (after the catalogue changed)."""
        ids = np.asarray(self.data[KEY]).astype(np.int64)
        if self.ids is None or not np.array_equal(ids, self.ids):
            self.ids = ids
            self.row_of = {int(c): i for i, c in enumerate(ids)}

    def cid(self, name: str) -> Any:
        """The component id of column ``name`` (None if absent)."""
        return component(self.data, name)

    def column(self, name: str) -> np.ndarray | None:
        """Column ``name`` as an array (None if absent)."""
        cid = self.cid(name)
        return None if cid is None else np.asarray(self.data[cid])

    def value(self, name: str, row: int) -> Any:
        """One value of column ``name`` (None if the column is absent)."""
        cid = self.cid(name)
        if cid is None:
            return None
        return np.asarray(self.data.get_data(cid, view=slice(row, row + 1)))[0]

    def labels(self) -> np.ndarray:
        """Manual label codes of every row (``LABEL_NONE`` where there is none)."""
        values = self.column(LABEL)
        if values is None:
            return np.full(self.ids.size, LABEL_NONE, dtype=np.int64)
        return values.astype(np.int64)


def id_list(ids: np.ndarray, most: int = 10) -> str:
    """``1, 2, 3`` (the first ``most`` ids, then how many more)."""
    shown = ", ".join(str(int(i)) for i in ids[:most])
    return shown + (f" and {ids.size - most} more" if ids.size > most else "")


def _listed_rows(cat: CatalogView, wanted: list[int],
                 default: np.ndarray) -> tuple[np.ndarray, str]:
    rows = [cat.row_of[int(i)] for i in wanted if int(i) in cat.row_of]
    if not wanted:
        return default, "no list of ids given: catalogue order"
    if not rows:
        return default, "none of the listed ids is in the catalogue: catalogue order"
    # A list edited into the state or a session by hand may repeat ids.
    _, first = np.unique(np.asarray(rows, dtype=np.int64), return_index=True)
    kept = np.asarray(rows, dtype=np.int64)[np.sort(first)]
    note = ""
    if len(wanted) > kept.size:
        note = (f"given list of ids ({len(wanted) - kept.size} not in the catalogue or "
                "repeated)")
    return kept, note


def check_navigation_ids(ids: Iterable[int] | np.ndarray, cat: CatalogView) -> list[int]:
    """Validate a list of candidate ids to navigate through.

    Parameters
    ----------
    ids : iterable of int
        ``clump_id`` values, each at most once.
    cat : CatalogView

    Returns
    -------
    list of int

    Raises
    ------
    ValueError
        Empty, not integers, repeated ids or ids that are not in the catalogue.
    """
    values = np.asarray(ids if isinstance(ids, np.ndarray) else list(ids))
    if values.size == 0:
        raise ValueError("set_navigation_ids: the list of clump ids is empty (pass None "
                         "to restore the viewer's own order)")
    if values.ndim != 1 or values.dtype.kind not in "iu":
        raise ValueError("set_navigation_ids: expected a flat list of integer clump ids, "
                         f"got an array of {values.dtype} with shape {values.shape}")
    unique, counts = np.unique(values, return_counts=True)
    repeated = unique[counts > 1]
    if repeated.size:
        raise ValueError("set_navigation_ids: clump ids listed more than once: "
                         f"{id_list(repeated)}")
    unknown = np.array([i for i in values.tolist() if i not in cat.row_of], dtype=np.int64)
    if unknown.size:
        raise ValueError(f"set_navigation_ids: {unknown.size} clump id(s) not in the "
                         f"catalogue {cat.data.label!r}: {id_list(unknown)}")
    return [int(i) for i in values.tolist()]


class Navigation:
    """The navigation order of a catalogue and the moves through it.

    Attributes
    ----------
    order : ndarray
        Catalogue rows in navigation order.
    note : str
        Why the order differs from the one asked for ('' if it does not).
    """

    def __init__(self) -> None:
        self.cat: CatalogView | None = None
        self.order = np.empty(0, dtype=np.int64)
        self.pos_of_row = np.empty(0, dtype=np.int64)
        self.note = ""

    def build(self, cat: CatalogView | None, how: str, seed: int = 0,
              listed: Iterable[int] | None = None) -> None:
        """Compute the order.

        Parameters
        ----------
        cat : CatalogView or None
        how : {'catalogue', 'uncertain', 'snr', 'random', 'list'}
            Catalogue order; most uncertain ``p_clump`` first; lowest peak SNR first;
            a seeded random permutation; the ``listed`` ids.
        seed : int
            Seed of the random order.
        listed : iterable of int, optional
            Ids of the ``'list'`` order.
        """
        self.cat = cat
        self.note = ""
        if cat is None:
            self.order = np.empty(0, dtype=np.int64)
            self.pos_of_row = np.empty(0, dtype=np.int64)
            return
        n = cat.ids.size
        order = np.arange(n)
        if how == "uncertain":
            p = cat.column(P_CLUMP)
            if p is None or not np.isfinite(p.astype(float)).any():
                self.note = "no p_clump yet: catalogue order"
            else:
                key = np.abs(p.astype(float) - 0.5)
                order = np.argsort(np.where(np.isfinite(key), key, np.inf), kind="stable")
        elif how == "snr":
            snr = cat.column("snr_peak")
            if snr is None:
                self.note = "no snr_peak column: catalogue order"
            else:
                snr = snr.astype(float)
                order = np.argsort(np.where(np.isfinite(snr), snr, np.inf), kind="stable")
        elif how == "random":
            order = np.random.default_rng(int(seed or 0)).permutation(n)
        elif how == "list":
            order, self.note = _listed_rows(cat, list(listed or ()), order)
        self.order = order.astype(np.int64)
        # Rows outside the order (a given list) are past its end.
        self.pos_of_row = np.full(n, self.order.size, dtype=np.int64)
        self.pos_of_row[self.order] = np.arange(self.order.size)

    def position(self, row: int | None) -> int | None:
        """Position of catalogue ``row`` in the order (None: not in it)."""
        if row is None or row >= self.pos_of_row.size:
            return None
        pos = int(self.pos_of_row[row])
        return pos if pos < self.order.size else None

    def find(self, start: int, step: int, unlabelled_only: bool) -> tuple[int | None, str]:
        """The first row at or after ``start`` (or before, ``step=-1``) in the order.

        Returns
        -------
        row : int or None
            None when there is none.
        why : str
            Why there is none ('' when there is one).
        """
        cat = self.cat
        if cat is None or self.order.size == 0:
            return None, ""
        n = self.order.size
        if step > 0:
            rows = self.order[max(start, 0):]
        else:
            rows = self.order[:min(start, n - 1) + 1][::-1]
        if unlabelled_only and rows.size:
            ok = cat.labels()[rows] == LABEL_NONE
            if not ok.any():
                return None, ("no unlabelled candidate " + ("after" if step > 0 else "before")
                              + " this one")
            rows = rows[int(np.argmax(ok)):]
        if rows.size == 0:
            return None, "end of the list" if step > 0 else "start of the list"
        return int(rows[0]), ""

    def ids(self, unlabelled_only: bool) -> np.ndarray:
        """The candidate ids in navigation order."""
        if self.cat is None:
            return np.empty(0, dtype=np.int64)
        rows = self.order
        if unlabelled_only:
            rows = rows[self.cat.labels()[rows] == LABEL_NONE]
        return self.cat.ids[rows]

    def neighbours(self, row: int | None, unlabelled_only: bool, ahead: int = 2,
                   behind: int = 1) -> list[int]:
        """Ids of the candidates after (then before) ``row`` in the order."""
        cat = self.cat
        if cat is None or row is None or self.order.size == 0:
            return []
        pos = self.position(row)
        if pos is None:  # outside a given list: its first ones come next
            window = self.order[:4 * ahead + 5]
        else:
            window = self.order[max(0, pos - 4 * behind - 4):pos + 4 * ahead + 5]
        if unlabelled_only:
            window = window[cat.labels()[window] == LABEL_NONE]
        ids = cat.ids[window]
        where = np.flatnonzero(ids == cat.ids[row])
        if where.size:
            k = int(where[0])
            after, before = ids[k + 1:k + 1 + ahead], ids[max(0, k - behind):k][::-1]
        else:
            after, before = ids[ids != cat.ids[row]][:ahead], ids[:0]
        return [int(i) for i in (*after, *before)]


def ids_selected_by(state: Any, cat: CatalogView, cube_data: BaseData | None = None,
                    cube_labels: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """Candidate ids a subset state selects, and whether it was drawn on the cube.

    Parameters
    ----------
    state : SubsetState
        A state of a subset of the catalogue.
    cat : CatalogView
    cube_data : glue Data, optional
        The cube of the pair.
    cube_labels : ndarray, optional
        Its ``clump_id`` mask.

    Raises
    ------
    glue.core.exceptions.IncompatibleAttribute
        If the state cannot be evaluated on the catalogue.
    """
    if cube_data is not None and isinstance(state, SliceSubsetState) \
            and state.reference_data is cube_data:
        # glue's pixel-selection tool: read only the selected line of sight.
        ids = np.unique(cube_labels[tuple(state.slices)])
        return ids[ids > 0].astype(np.int64), True
    if isinstance(state, ElementSubsetState) and state.data == cat.data.uuid:
        rows = np.asarray(state.indices, dtype=np.int64).ravel()
        rows = rows[(rows >= 0) & (rows < cat.ids.size)]
        return cat.ids[rows], False
    parents = {getattr(a, "parent", None) for a in getattr(state, "attributes", ())}
    if cube_data is not None and parents and parents <= {cube_data}:
        mask = np.asarray(cube_data.get_mask(state), dtype=bool)
        ids = np.unique(cube_labels[mask])
        return ids[ids > 0].astype(np.int64), True
    mask = np.asarray(cat.data.get_mask(state), dtype=bool)
    return cat.ids[mask], False


def follow_row(ids: np.ndarray, from_cube: bool, current: int | None,
               navigation: Navigation) -> int | None:
    """The catalogue row a selection of ``ids`` makes current (None: stay).

    The current candidate stays if it is selected.  A catalogue selection gives the
    first selected row in the navigation order; a selection on the cube (which can
    cross several candidates along the line of sight) gives the brightest one.
    """
    cat = navigation.cat
    assert cat is not None
    if current is not None and int(current) in set(ids.tolist()):
        return None
    rows = np.array([cat.row_of[i] for i in ids.tolist() if i in cat.row_of], dtype=np.int64)
    if rows.size == 0:
        return None
    peak = cat.column("peak_value") if from_cube else None
    if peak is not None:
        return int(rows[np.argmax(np.nan_to_num(peak[rows].astype(float), nan=-np.inf))])
    return int(rows[np.argmin(navigation.pos_of_row[rows])])
