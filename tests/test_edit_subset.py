"""Groups that glue-ssclump keeps never become glue's edit subset.

glue-qt selects every new subset group in its data collection panel, and that makes it
the subset the next brush edits: after a training run the user's next selection would
have redefined "SS-3D-Clump: uncertain".
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("glue_qt")

from glue.core import Data, DataCollection  # noqa: E402
from glue.core.subset import RangeSubsetState  # noqa: E402
from glue_qt.app import GlueApplication  # noqa: E402

from glue_ssclump.integration.writeback import write_verdicts  # noqa: E402


def test_verdict_groups_do_not_become_the_edit_subset(qapp):
    cat = Data(clump_id=np.arange(1, 6), label="catalogue")
    dc = DataCollection([cat])
    app = GlueApplication(dc)
    try:
        mode = app.session.edit_subset_mode
        write_verdicts(dc, cat, p_clump=np.linspace(0, 1, 5),
                       verdict=np.array(["clump", "rejected", "uncertain", "clump", ""]),
                       label=np.array([1, 0, -1, -1, 2]))
        qapp.processEvents()
        assert len(dc.subset_groups) == 5
        assert mode.edit_subset == []
        # the user's next selection is a new subset; the verdict groups keep their rows
        uncertain = next(g for g in dc.subset_groups if g.label == "SS-3D-Clump: uncertain")
        before = uncertain.subsets[0].to_mask().copy()
        mode.update(dc, RangeSubsetState(1, 2, cat.id["clump_id"]))
        assert len(dc.subset_groups) == 6
        np.testing.assert_array_equal(uncertain.subsets[0].to_mask(), before)
        # a group the user chose to edit stays chosen across a write-back
        mode.edit_subset = [dc.subset_groups[-1]]
        write_verdicts(dc, cat, verdict=np.array(["rejected"] * 5))
        assert mode.edit_subset == [dc.subset_groups[-1]]
    finally:
        app.close()
