"""Navigation order and moves through a candidate catalogue (no Qt)."""

from __future__ import annotations

import numpy as np
import pytest
from glue.core import Data
from glue.core.subset import ElementSubsetState

from glue_ssclump.core.labels import LABEL_CLUMP, LABEL_NONE
from glue_ssclump.integration.navigation import (
    CatalogView,
    Navigation,
    check_navigation_ids,
    follow_row,
    ids_selected_by,
)


def _catalog(labels=None, **columns) -> CatalogView:
    data = Data(clump_id=np.array([10, 20, 30, 40, 50]), label="cat", **columns)
    if labels is not None:
        data.add_component(np.asarray(labels), "label")  # the manual labels column
    return CatalogView(data)


def test_orders():
    cat = _catalog(p_clump=np.array([0.95, 0.5, 0.1, 0.45, np.nan]),
                   snr_peak=np.array([5.0, 3.0, np.nan, 1.0, 4.0]))
    nav = Navigation()
    nav.build(cat, "catalogue")
    assert nav.order.tolist() == [0, 1, 2, 3, 4] and nav.note == ""
    nav.build(cat, "uncertain")
    assert nav.order.tolist() == [1, 3, 2, 0, 4]  # |p - 0.5|, NaN last
    nav.build(cat, "snr")
    assert nav.order.tolist() == [3, 1, 4, 0, 2]
    nav.build(cat, "random", seed=3)
    assert sorted(nav.order.tolist()) == [0, 1, 2, 3, 4]
    again = Navigation()
    again.build(cat, "random", seed=3)
    np.testing.assert_array_equal(nav.order, again.order)


def test_missing_columns_fall_back_to_catalogue_order():
    nav = Navigation()
    nav.build(_catalog(), "uncertain")
    assert nav.order.tolist() == [0, 1, 2, 3, 4] and "no p_clump" in nav.note
    nav.build(_catalog(), "snr")
    assert "no snr_peak" in nav.note


def test_list_order_positions_and_moves():
    cat = _catalog()
    nav = Navigation()
    nav.build(cat, "list", listed=[40, 10, 99, 10])
    assert nav.order.tolist() == [3, 0]
    assert "2 not in the catalogue or repeated" in nav.note
    assert nav.position(3) == 0 and nav.position(0) == 1 and nav.position(1) is None
    assert nav.find(1, +1, False) == (0, "")
    assert nav.find(2, +1, False) == (None, "end of the list")
    assert nav.find(-1, -1, False) == (None, "start of the list")
    assert nav.ids(False).tolist() == [40, 10]
    nav.build(cat, "list", listed=[])
    assert nav.order.tolist() == [0, 1, 2, 3, 4] and "no list" in nav.note


def test_unlabelled_only_skips_labelled():
    cat = _catalog(labels=np.array([LABEL_CLUMP, LABEL_CLUMP, LABEL_NONE, LABEL_CLUMP,
                                   LABEL_NONE]))
    nav = Navigation()
    nav.build(cat, "catalogue")
    assert nav.find(0, +1, True) == (2, "")
    assert nav.ids(True).tolist() == [30, 50]
    row, why = nav.find(1, -1, True)
    assert row is None and why == "no unlabelled candidate before this one"
    assert nav.neighbours(2, True) == [50]
    assert nav.neighbours(2, False) == [40, 50, 20]


def test_check_navigation_ids():
    cat = _catalog()
    assert check_navigation_ids(np.array([30, 10]), cat) == [30, 10]
    for bad, words in (([], "empty"), ([1.5], "integer"), ([10, 10], "more than once"),
                       ([10, 77], "not in the catalogue")):
        with pytest.raises(ValueError, match=words):
            check_navigation_ids(bad, cat)


def test_follow_a_table_selection():
    cat = _catalog(peak_value=np.array([1.0, 5.0, 2.0, 9.0, 3.0]))
    nav = Navigation()
    nav.build(cat, "list", listed=[40, 20])
    state = ElementSubsetState(indices=[1, 3], data=cat.data)
    ids, from_cube = ids_selected_by(state, cat)
    assert ids.tolist() == [20, 40] and not from_cube
    assert cat.ids[follow_row(ids, from_cube, None, nav)] == 40  # first in the order
    assert cat.ids[follow_row(ids, True, None, nav)] == 40  # brightest
    assert follow_row(ids, False, 20, nav) is None  # the current one is selected
