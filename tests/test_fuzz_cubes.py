"""Fuzz the cube reader and ``ssclump detect`` with malformed FITS files.

Every case of :func:`fuzz.cubes.cube_corpus` (truncations, broken BITPIX / NAXISn, WCS
keywords that are missing, garbled, NaN or contradictory, singular PC / CD matrices,
scaling keywords, compressed and multi-HDU files, tables, non-FITS files, folders,
unreadable files, constant and all-blank data, int16 with BLANK, random byte flips) must
end in a cube or a :class:`CubeError` whose message names the fix; through the CLI it
must end in exit 0 or exit 2 with one line, and a failure must leave the previous
``catalog.fits`` / ``mask.fits`` byte for byte.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from fuzz import Failures, exit_status, guard_for, quiet, run_case
from fuzz.cubes import cube_corpus, valid_cube_bytes

from glue_ssclump.cli import main
from glue_ssclump.core.catalog import read_catalog, read_mask
from glue_ssclump.core.cube import CubeError, PPVCube, read_cube


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, l1448_path):
    folder = tmp_path_factory.mktemp("cubes")
    cases = list(cube_corpus(folder, seed=0, l1448=l1448_path))
    yield cases
    for _, _, path in cases:  # let pytest remove the folder
        with contextlib.suppress(OSError):
            path.chmod(0o600)


def test_read_cube_fuzz(corpus, fuzz_tally):
    failures = Failures()
    with quiet():
        for kind, name, path in corpus:
            with guard_for(name, path):
                outcome, value = run_case(fuzz_tally, failures, kind, name,
                                          lambda p=path: read_cube(p))
            if outcome == "result":
                # A result is a usable cube: finite-or-NaN float32 (v, y, x) data.
                ok = (isinstance(value, PPVCube) and value.data.ndim == 3
                      and value.data.dtype == np.float32 and not np.isinf(value.data).any())
                if not ok:
                    failures.add(kind, name, "read_cube returned an unusable cube")
            if name == "an unreadable file" and outcome != "message":
                failures.add(kind, name, f"expected a permission message, got {outcome}")
    failures.check()


def test_truncated_l1448_is_one_line_exit_2(tmp_path, l1448_path, capsys):
    """The issue's case: ``head -c 20000 l1448_13co.fits > cut.fits``."""
    cut = tmp_path / "cut.fits"
    cut.write_bytes(l1448_path.read_bytes()[:20000])
    with pytest.raises(CubeError, match="truncated"):
        read_cube(cut)
    assert main(["detect", str(cut), "--out", str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("ssclump detect: error:") and "truncated" in err[0]
    assert "copy the file again" in err[0]
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


@pytest.fixture(scope="module")
def previous_outputs(tmp_path_factory):
    """A detection directory from a valid cube: the outputs a failed run must keep."""
    folder = tmp_path_factory.mktemp("previous")
    cube = folder / "good.fits"
    cube.write_bytes(valid_cube_bytes())
    out = folder / "out"
    with quiet():
        assert main(["detect", str(cube), "--out", str(out), "--quiet", "--rms", "0.1"]) == 0
    return {name: (out / name).read_bytes() for name in ("catalog.fits", "mask.fits")}


def _restore(out: Path, files: dict[str, bytes]) -> None:
    out.mkdir(exist_ok=True)
    for name, content in files.items():
        (out / name).write_bytes(content)


def test_cli_detect_fuzz(corpus, previous_outputs, tmp_path, capsys, fuzz_tally):
    """Exit 0 with both outputs, or exit 2 with one line and the old outputs untouched."""
    failures = Failures()
    kind = "ssclump detect"
    out = tmp_path / "out"
    with quiet():
        for _, name, path in corpus:
            _restore(out, previous_outputs)
            capsys.readouterr()
            with guard_for(name, path):
                outcome, rc = run_case(fuzz_tally, failures, kind, name, lambda p=path: main(
                    ["detect", str(p), "--out", str(out), "--quiet"]), classify=exit_status)
            if isinstance(rc, BaseException):  # already listed by run_case
                continue
            err = [ln for ln in capsys.readouterr().err.splitlines() if "error:" in ln]
            leftovers = sorted(p.name for p in out.iterdir()
                               if p.name not in ("catalog.fits", "mask.fits"))
            if leftovers:
                fuzz_tally.add(kind, "partial output")
                failures.add(kind, name, f"temporary files left: {leftovers}")
            if rc == 2:
                if len(err) != 1:
                    failures.add(kind, name, f"exit 2 without one error line: {err}")
                changed = [n for n, b in previous_outputs.items() if (out / n).read_bytes() != b]
                if changed:
                    fuzz_tally.add(kind, "partial output")
                    failures.add(kind, name, f"failed run changed {changed}")
            elif rc == 0:
                try:  # a result: a matching catalogue + mask pair
                    read_mask(out / "mask.fits", catalog=read_catalog(out / "catalog.fits"))
                except Exception as exc:  # noqa: BLE001
                    failures.add(kind, name, f"exit 0 but unusable outputs: {exc}")
            else:
                failures.add(kind, name, f"exit status {rc}")
    failures.check()


def test_failed_write_keeps_previous_outputs(previous_outputs, tmp_path, monkeypatch, capsys,
                                             fuzz_tally):
    """A write that fails half-way (disk full while writing the mask) changes nothing."""
    out = tmp_path / "out"
    _restore(out, previous_outputs)
    cube = tmp_path / "good.fits"
    cube.write_bytes(valid_cube_bytes())

    def disk_full(self, *args, **kwargs):
        raise PermissionError(28, "No space left on device")

    monkeypatch.setattr(fits.PrimaryHDU, "writeto", disk_full)
    with quiet():
        rc = main(["detect", str(cube), "--out", str(out), "--quiet", "--rms", "0.1"])
    assert rc == 2
    assert "No space left" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["catalog.fits", "mask.fits"]
    for name, content in previous_outputs.items():
        assert (out / name).read_bytes() == content, name
    fuzz_tally.add("ssclump detect: failed write", "message")
