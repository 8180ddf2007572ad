"""Malformed input in glue: the data factory, session files, and a real GlueApplication.

The data factory gets the whole malformed-cube corpus; session files saved without data
are edited by hand (a cube that is gone, moved, damaged; broken JSON; edited factory
keywords). In an offscreen GlueApplication, File > Open Data with the factory and
File > Open Session show the project's message in glue's message box, and the
application goes on working; the detect dialog shows the message for a cube whose WCS
is unusable.
"""

from __future__ import annotations

import contextlib
import json
import warnings

import numpy as np
import pytest
from astropy.io import fits
from fuzz import Failures, guard_for, quiet, run_case
from fuzz.cubes import base_cards, base_data, cube_corpus, fits_bytes, set_card, valid_cube_bytes
from glue.core import Data, DataCollection
from glue.core.data_factories import load_data
from qtpy import QtWidgets

from glue_ssclump.core.errors import SSClumpError
from glue_ssclump.core.progress import Cancelled
from glue_ssclump.integration import load_ppv_candidates, register_all
from glue_ssclump.integration.factory import FACTORY_LABEL
from glue_ssclump.integration.session import SessionError, load_session, save_session


def test_data_factory_fuzz(tmp_path, l1448_path, fuzz_tally):
    """Every malformed cube through the data factory: [cube, catalogue] or a message."""
    failures = Failures()
    with quiet():
        for _, name, path in cube_corpus(tmp_path, seed=0, l1448=l1448_path):
            with guard_for(name, path):
                outcome, value = run_case(fuzz_tally, failures, "glue data factory", name,
                                          lambda p=path: load_ppv_candidates(str(p)))
            if outcome == "result" and not (len(value) == 2 and all(
                    isinstance(d, Data) for d in value)):
                failures.add("glue data factory", name, f"returned {value!r}")
    for p in tmp_path.iterdir():  # the unreadable case, so pytest can clean up
        with contextlib.suppress(OSError):
            p.chmod(0o700)
    failures.check()


def test_data_factory_keywords_fuzz(tmp_path, fuzz_tally):
    """The factory's keywords come back from (hand-editable) session files."""
    cube = tmp_path / "cube.fits"
    cube.write_bytes(valid_cube_bytes())
    failures = Failures()
    cases = {
        "defaults": {}, "method unknown": {"method": "nope"}, "method None": {"method": None},
        "params a string": {"params": "Tlow=3"}, "params a list": {"params": [1, 2]},
        "param unknown": {"params": {"Bogus": 1}}, "param text": {"params": {"Tlow": "lots"}},
        "param NaN": {"params": {"Tlow": float("nan")}}, "rms negative": {"rms": -1.0},
        "rms text": {"rms": "abc"}, "rms zero": {"rms": 0.0}, "rms inf": {"rms": float("inf")},
        "rms NaN": {"rms": float("nan")}, "rms True": {"rms": True}, "rms 0.1": {"rms": 0.1},
    }
    outcomes = {}
    with quiet():
        for name, kwargs in cases.items():
            outcomes[name] = run_case(fuzz_tally, failures, "glue data factory: keywords", name,
                                      lambda kw=kwargs: load_ppv_candidates(str(cube), **kw))
    failures.check()
    assert outcomes["defaults"][0] == outcomes["rms 0.1"][0] == "result"
    for name in ("rms negative", "rms text", "params a list", "method unknown"):
        assert isinstance(outcomes[name][1], SSClumpError), name
    assert not issubclass(Cancelled, SSClumpError)  # cancelling is not an input error


@pytest.fixture(scope="module")
def saved_session(tmp_path_factory):
    """A cube file and a session saved without data (the factory re-runs on restore)."""
    folder = tmp_path_factory.mktemp("session")
    cube = folder / "cube.fits"
    cube.write_bytes(valid_cube_bytes())
    register_all()
    with quiet():
        data = load_data(str(cube), factory=load_ppv_candidates, rms=0.1)
        session = save_session(DataCollection(data), folder / "s.glu", include_data=False)
    return cube, session.read_text()


def _edited_sessions(cube, text: str, folder, rng) -> dict[str, str | bytes]:
    """Sessions edited by hand: the path, the factory keywords, the JSON itself."""
    cases: dict[str, str | bytes] = {"as saved": text}
    for name, target in {
        "cube is gone": folder / "gone.fits",
        "cube moved into a folder": folder,
        "path is empty": "",
        "cube is truncated": folder / "cut.fits",
        "cube is not FITS": folder / "notes.fits",
        "cube has a singular WCS": folder / "singular.fits",
    }.items():
        cases[name] = text.replace(json.dumps(str(cube))[1:-1], str(target))
    (folder / "cut.fits").write_bytes(valid_cube_bytes()[:4000])
    (folder / "notes.fits").write_text("observing notes\n")
    cards = set_card(set_card(base_cards(), "PC1_2", 1.0), "PC2_1", 1.0)
    cards = set_card(set_card(cards, "PC1_1", 1.0), "PC2_2", 1.0)
    (folder / "singular.fits").write_bytes(fits_bytes(
        cards, base_data().astype(">f4").tobytes()))
    state = json.loads(text)
    log_key = next(k for k, v in state.items() if isinstance(v, dict) and "kwargs" in v)
    kwargs_cases = {
        "method unknown": {"method": "nope"},
        "params a string": {"params": "Tlow=3"},
        "params a list": {"params": [1, 2]},
        "param unknown": {"params": {"Bogus": 1}},
        "param not a number": {"params": {"Tlow": "lots"}},
        "rms negative": {"rms": -1.0},
        "rms text": {"rms": "abc"},
        "rms zero": {"rms": 0.0},
    }
    for name, change in kwargs_cases.items():
        edited = json.loads(text)
        # glue stores the factory keywords as [[key, value], ...] ([[]] when none)
        kw = {x[0]: x[1] for x in edited[log_key]["kwargs"] if len(x) == 2}
        edited[log_key]["kwargs"] = [[k, v] for k, v in {**kw, **change}.items()]
        cases[name] = json.dumps(edited)
    for n in sorted({int(x) for x in rng.integers(1, len(text), 12)}):
        cases[f"cut at {n} of {len(text)} chars"] = text[:n]
    for i in range(12):
        buf = bytearray(text.encode())
        for pos in rng.integers(0, len(buf), 3):
            buf[int(pos)] = int(rng.integers(32, 127))
        cases[f"character flips {i}"] = bytes(buf)
    cases["empty"] = ""
    cases["a JSON list"] = "[1, 2, 3]"
    cases["not JSON"] = "glue session\n"
    cases["Latin-1 bytes"] = "session é".encode("latin-1")
    return cases


def test_session_file_fuzz(saved_session, tmp_path, fuzz_tally):
    cube, text = saved_session
    failures = Failures()
    outcomes = {}
    with quiet():
        for i, (name, content) in enumerate(_edited_sessions(
                cube, text, tmp_path, np.random.default_rng(0)).items()):
            path = tmp_path / f"s{i}.glu"
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
            outcomes[name] = run_case(fuzz_tally, failures, "glue session file", name,
                                      lambda p=path: load_session(p))
        for name, path in (("a folder", tmp_path), ("no such file", tmp_path / "x.glu")):
            outcomes[name] = run_case(fuzz_tally, failures, "glue session file", name,
                                      lambda p=path: load_session(p))
    failures.check()
    assert outcomes["as saved"][0] == "result"
    outcome, exc = outcomes["cube is gone"]
    assert isinstance(exc, SessionError)
    assert "gone.fits: no such file" in str(exc) and "edit its path" in str(exc)
    assert isinstance(outcomes["cube is truncated"][1], SessionError)
    assert "truncated" in str(outcomes["cube is truncated"][1])


# -- a real GlueApplication ---------------------------------------------------------------


@pytest.fixture
def boxes(monkeypatch):
    """Message boxes 'shown' (exec_ returns at once: Cancel), as (title, text, details)."""
    shown = []

    def exec_(box):
        shown.append((box.windowTitle(), box.text(), box.detailedText()))
        return QtWidgets.QMessageBox.Cancel

    monkeypatch.setattr(QtWidgets.QMessageBox, "exec_", exec_)
    return shown


@pytest.fixture
def glue_app(qapp):
    from glue_qt.app import GlueApplication

    register_all()
    app = GlueApplication()
    yield app
    app.close()


def _open_data(app, path, monkeypatch):
    """File > Open Data with the glue-ssclump factory chosen, for ``path``."""
    from glue.config import data_factory
    from glue_qt.dialogs.data_wizard import data_wizard_dialog as wizard

    factory = next(f for f in data_factory.members if f.label == FACTORY_LABEL)
    monkeypatch.setattr(wizard.GlueDataDialog, "_get_paths_and_factory",
                        lambda self: ([str(path)], factory))
    app._import_helper._choose_load_data_wizard()


def test_glue_application_shows_messages_and_keeps_running(glue_app, boxes, tmp_path,
                                                           l1448_path, monkeypatch, fuzz_tally):
    app = glue_app
    cut = tmp_path / "cut.fits"
    cut.write_bytes(l1448_path.read_bytes()[:20000])
    notes = tmp_path / "notes.fits"
    notes.write_text("not a cube")
    flat = tmp_path / "flat.fits"
    fits.PrimaryHDU(np.zeros((4, 5, 6), np.float32)).writeto(flat)
    with quiet():
        for name, path, match in (("truncated L1448", cut, "truncated"),
                                  ("not FITS", notes, "not a readable FITS file"),
                                  ("no WCS", flat, "no WCS")):
            boxes.clear()
            _open_data(app, path, monkeypatch)
            assert len(app.data_collection) == 0, name
            assert len(boxes) == 1, (name, boxes)
            title, text, details = boxes[0]
            assert str(path) in text and match in details, (name, boxes[0])
            fuzz_tally.add("glue application: Open Data", "message")

        # Open Session on a session whose cube is gone: glue's box holds our message.
        good = tmp_path / "good.fits"
        good.write_bytes(valid_cube_bytes())
        data = load_data(str(good), factory=load_ppv_candidates, rms=0.1)
        session = save_session(DataCollection(data), tmp_path / "s.glu", include_data=False)
        good.rename(tmp_path / "moved.fits")
        boxes.clear()
        monkeypatch.setenv("GLUE_TESTING", "False")  # glue shows the box instead of raising
        app.restore_session_and_close(str(session), warn=False)
        monkeypatch.setenv("GLUE_TESTING", "True")
        assert len(boxes) == 1 and "Failed to restore session" in boxes[0][1]
        assert "good.fits: no such file" in boxes[0][1]
        fuzz_tally.add("glue application: Open Session", "message")

        # Still working: the moved cube opens through the same menu path.
        boxes.clear()
        _open_data(app, tmp_path / "moved.fits", monkeypatch)
    assert not boxes and len(app.data_collection) == 2
    assert app.data_collection[0].ndim == 3


def test_detect_dialog_shows_the_message_for_an_unusable_cube(qapp, monkeypatch):
    """A cube opened with glue's own FITS loader whose WCS is singular."""
    from glue_ssclump.qt import detect_dialog

    header = fits.Header()
    for k, v in base_cards()[5:]:
        header[k] = v
    for k, v in (("PC1_1", 1.0), ("PC1_2", 1.0), ("PC2_1", 1.0), ("PC2_2", 1.0)):
        header[k] = v
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from astropy.wcs import WCS

        data = Data(label="singular", coords=WCS(header))
    data.add_component(base_data(), "intensity")
    dc = DataCollection([data])

    class NoApp:
        application = None

    dialog = detect_dialog.DetectDialog(NoApp(), dc)
    try:
        level, title, text = dialog.last_message
        assert title == "Cannot estimate the noise" and "degenerate" in text
        dialog.state.rms = 0.1
        assert dialog.run() is False
        level, title, text = dialog.last_message
        assert title == "Not a usable cube" and "PC/CD" in text
        assert len(dc) == 1
    finally:
        for w in QtWidgets.QApplication.topLevelWidgets():
            if isinstance(w, QtWidgets.QMessageBox) and w.isVisible():
                w.close()
        dialog.close()


def test_train_dialog_shows_the_message_for_a_damaged_checkpoint(glue_app, qtbot, tmp_path,
                                                                  fuzz_tally):
    """Verify-only from a checkpoint that is random bytes, in the GlueApplication: the
    dialog shows the CheckpointError and the session keeps its catalogue unchanged."""
    from glue_ssclump.qt.menus import open_train_dialog, register_menubar_plugins

    app = glue_app
    register_menubar_plugins()
    cube = tmp_path / "cube.fits"
    cube.write_bytes(valid_cube_bytes())
    with quiet():
        cube_data, cat = load_data(str(cube), factory=load_ppv_candidates, rms=0.1)
    app.add_datasets([cube_data, cat])
    columns = [c.label for c in cat.components]
    bad = tmp_path / "model.pt"
    bad.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8)))
    dialog = open_train_dialog(app.session, app.data_collection)
    try:
        st = dialog.state
        st.catalog_data = cat
        st.mode = "verify"
        st.init = "checkpoint"
        st.checkpoint_path = str(bad)
        st.device = "cpu"
        st.out_dir = str(tmp_path / "out")
        if dialog.run():
            qtbot.waitUntil(lambda: not dialog.is_running, timeout=120_000)
        level, title, text = dialog.last_message
        assert level == "critical" and "not a readable PyTorch file" in text, text
        assert [c.label for c in cat.components] == columns  # no verdicts written
        fuzz_tally.add("glue application: train dialog", "message")
    finally:
        for w in QtWidgets.QApplication.topLevelWidgets():
            if isinstance(w, QtWidgets.QMessageBox) and w.isVisible():
                w.close()
        dialog.close()
