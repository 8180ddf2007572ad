"""The demo's glue session: written, screenshots saved, restored as an application."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("glue_qt")


def _settle(qtbot, app):
    """Let the verification viewer finish indexing, then close the application."""
    from glue_ssclump.qt.viewer import VerificationViewer

    for viewer in app.viewers[0]:
        if isinstance(viewer, VerificationViewer):
            qtbot.waitUntil(lambda v=viewer: v.is_ready, timeout=60000)
    # closing stops and waits for the background threads (glue_ssclump.qt.threads)
    app.close()


def test_demo_session_round_trip(qtbot, l1448_cube, tmp_path):
    from glue_ssclump.core.pipeline import detect
    from glue_ssclump.integration.session import load_session, verified_collection
    from glue_ssclump.qt.demo import build_application, write_session
    from glue_ssclump.qt.viewer import VerificationViewer

    det = detect(l1448_cube, "fellwalker", 0.15)
    cat = det.catalog.copy()
    cat["p_clump"] = np.linspace(0, 1, len(cat))
    cat["verdict"] = np.where(cat["p_clump"] >= 0.5, "clump", "rejected")
    cat["label"] = np.full(len(cat), -1)
    dc, cube_data, cat_data = verified_collection(l1448_cube, det.mask, cat, "L1448")
    assert {g.label for g in dc.subset_groups} >= {"SS-3D-Clump: clumps",
                                                   "SS-3D-Clump: rejected"}
    built = build_application(dc, cube_data, cat_data)
    paths = write_session(built, tmp_path)
    # The screenshots wait for the verification viewer's background index and render.
    verifier = next(v for v in built.viewers[0] if isinstance(v, VerificationViewer))
    assert verifier.is_ready and verifier.display_is_current
    _settle(qtbot, built)
    for key in ("session", "screenshot", "imageviewer", "tableviewer", "verificationviewer"):
        assert paths[key].is_file() and paths[key].stat().st_size > 1000, key
    app = load_session(paths["session"])
    assert type(app).__name__ == "GlueApplication"
    restored = {d.label: d for d in app.data_collection}
    assert set(restored) == {"L1448", "L1448 candidates (fellwalker)"}
    np.testing.assert_array_equal(restored["L1448"]["clump_id"], det.mask)
    assert len(app.viewers[0]) == 3
    _settle(qtbot, app)
