"""The detector plugin registry: built-ins via entry points, third-party plugins, params."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

from glue_ssclump.core.detectors import (
    ENTRY_POINT_GROUP,
    DetectorError,
    available_detectors,
    get_detector,
    parse_param_assignments,
    plugin_manager,
    relabel_consecutive,
    run_detector,
)
from glue_ssclump.core.progress import Cancelled, Progress


def test_builtins_come_from_the_entry_point_group():
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert {"clumpfind", "fellwalker", "dendrogram"} <= names
    registered = {name for name, _ in plugin_manager().list_name_plugin()}
    assert {"clumpfind", "fellwalker", "dendrogram"} <= registered
    assert {"clumpfind", "fellwalker", "dendrogram"} <= set(available_detectors())


def test_third_party_detector_registers_through_entry_point(tmp_path, monkeypatch):
    pkg = tmp_path / "my_detector_pkg.py"
    pkg.write_text(textwrap.dedent(
        """
        import numpy as np
        from glue_ssclump.core.detectors import Detector, Param, hookimpl

        def run(data, rms, params, progress):
            progress.update(0.5)
            return (np.nan_to_num(data) > params["cut"]).astype(np.int32)

        @hookimpl
        def ssclump_detectors():
            return [Detector("threshold", "everything above a cut",
                             (Param("cut", "3rms", "level", "cut level"),), run)]
        """
    ))
    dist = tmp_path / "my_detector_pkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-detector-pkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nthreshold = my_detector_pkg\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    plugin_manager.cache_clear()
    try:
        assert "threshold" in available_detectors()
        data = np.zeros((3, 4, 4), np.float32)
        data[1, 1:3, 1:3] = 1.0
        res = run_detector(data, "THRESHOLD", rms=0.1)  # names are case-insensitive
        assert res.params["cut"] == pytest.approx(0.3)
        assert res.n_candidates == 1
        assert res.mask.sum() == 4
    finally:
        plugin_manager.cache_clear()
        sys.modules.pop("my_detector_pkg", None)


def test_level_parameters_in_kelvin_or_rms():
    det = get_detector("dendrogram")
    p = det.resolve({"MIN_VALUE": "2.5rms", "min_delta": 0.4, "min_npix": "12"}, rms=0.2)
    assert p == {"min_value": pytest.approx(0.5), "min_delta": 0.4, "min_npix": 12}
    assert det.resolve({"min_value": "3*rms"}, rms=0.1)["min_value"] == pytest.approx(0.3)
    assert det.resolve(None, rms=0.1)["min_delta"] == pytest.approx(0.2)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"nonsense": 1}, "has no parameter 'nonsense'"),
        ({"min_value": "lots"}, "not a valid level"),
        ({"min_npix": 2.5}, "not a valid int"),
        ({"min_value": "nan"}, "not a valid level"),
        ({"min_delta": "infrms"}, "not a valid level"),
        ({"min_npix": "nan"}, "not a valid int"),
    ],
)
def test_bad_parameters_are_named(params, match):
    with pytest.raises(DetectorError, match=match):
        get_detector("dendrogram").resolve(params, rms=0.1)


def test_float_parameters_must_be_finite():
    det = get_detector("fellwalker")
    assert det.resolve({"FwhmBeam": "2.5"}, rms=0.1)["FwhmBeam"] == 2.5
    for bad in ("nan", "inf", float("-inf")):
        with pytest.raises(DetectorError, match="FwhmBeam=.* is not a valid float"):
            det.resolve({"FwhmBeam": bad}, rms=0.1)


def test_unknown_detector_lists_the_known_ones():
    with pytest.raises(DetectorError, match="available: .*dendrogram"):
        get_detector("nope")


def test_param_assignment_parsing():
    assert parse_param_assignments(["Tlow=3rms", " DeltaT = 0.3 "]) == {
        "Tlow": "3rms", "DeltaT": "0.3"}
    with pytest.raises(DetectorError, match="KEY=VALUE"):
        parse_param_assignments(["Tlow"])


def test_run_detector_rejects_bad_input():
    with pytest.raises(DetectorError, match="3D"):
        run_detector(np.zeros((4, 4)), "dendrogram", 0.1)
    with pytest.raises(DetectorError, match="rms"):
        run_detector(np.zeros((2, 4, 4)), "dendrogram", float("nan"))


def test_relabel_consecutive():
    lab = np.array([[0, 5, 5], [9, 0, 2]])
    out = relabel_consecutive(lab)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, [[0, 2, 2], [3, 0, 1]])


def test_dendrogram_cancel_is_honoured():
    progress = Progress()
    progress.cancel()
    with pytest.raises(Cancelled):
        run_detector(np.random.default_rng(0).normal(size=(5, 6, 6)).astype(np.float32),
                     "dendrogram", 0.1, progress=progress)


def test_parse_level_is_the_one_parser_of_level_strings():
    from glue_ssclump.core.detectors.base import parse_level

    assert parse_level("3rms") == (3.0, "rms")
    assert parse_level(" 2.5 x RMS ") == (2.5, "rms")
    assert parse_level("rms") == (1.0, "rms")
    assert parse_level("0.4K") == (0.4, "K")
    assert parse_level(0.25) == (0.25, "K")
    with pytest.raises(ValueError):
        parse_level("three rms")
