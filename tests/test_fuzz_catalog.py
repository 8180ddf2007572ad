"""Fuzz the catalogue and mask readers and ``ssclump verify`` on a detection folder.

Catalogues without ``clump_id`` or with repeated / non-integer ids, truncated or foreign
files; masks of another shape or grid, with negative or huge ids, non-integer values,
or ids the catalogue does not know. Each ends in a result or a CatalogError naming the
fix; ``ssclump verify`` exits 0 or 2 with one line and, when it fails, leaves
``catalog.fits`` (with any labels in it) byte for byte.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from fuzz import Failures, exit_status, quiet, run_case
from fuzz.cubes import valid_cube_bytes

from glue_ssclump.cli import main
from glue_ssclump.core.catalog import read_catalog, read_mask, write_catalog
from glue_ssclump.core.cube import read_cube


@pytest.fixture(scope="module")
def detection(tmp_path_factory):
    """A small cube and its detection folder (catalog.fits + mask.fits)."""
    folder = tmp_path_factory.mktemp("det")
    cube_path = folder / "cube.fits"
    cube_path.write_bytes(valid_cube_bytes())
    out = folder / "out"
    with quiet():
        assert main(["detect", str(cube_path), "--out", str(out), "--quiet", "--rms", "0.1",
                     "--param", "Tlow=0.2", "--param", "DeltaT=0.2"]) == 0
    return cube_path, out


def _catalog_cases(good: Path, rng: np.random.Generator) -> dict[str, object]:
    """name -> a Table to write, bytes, or a callable(path) that makes the file."""
    cat = read_catalog(good)
    raw = good.read_bytes()
    cases: dict[str, object] = {"valid": cat}
    t = cat.copy()
    t.rename_column("clump_id", "id")
    cases["no clump_id column"] = t
    t = cat.copy()
    t["clump_id"] = np.asarray(t["clump_id"], float) + 0.5
    cases["clump_id fractional"] = t
    t = cat.copy()
    t.replace_column("clump_id", [f"c{i}" for i in t["clump_id"]])
    cases["clump_id as text"] = t
    t = cat.copy()
    t["clump_id"] = 1
    cases["clump_id repeated"] = Table(t)[[0] * 2] if len(t) else t
    t = cat.copy()
    t["clump_id"] = -np.asarray(t["clump_id"])
    cases["clump_id negative"] = t
    cases["no rows"] = cat[:0]
    t = cat.copy()
    t["clump_id"] = np.asarray(t["clump_id"]) + 1000
    cases["ids not in the mask"] = t
    cases["METAJSON garbage"] = lambda p: _with_metajson(raw, p, "{not json")
    cases["METAJSON a list"] = lambda p: _with_metajson(raw, p, "[1, 2]")
    cases["an image, not a table"] = lambda p: fits.PrimaryHDU(np.zeros((3, 3))).writeto(p)
    cases["text"] = b"clump_id,peak\n1,2\n"
    cases["empty file"] = b""
    for n in sorted({int(x) for x in rng.integers(1, len(raw), 12)} | {2880, 5760}):
        cases[f"cut at {n} of {len(raw)} B"] = raw[:n]
    for i in range(4):
        cases[f"random bytes {i}"] = bytes(rng.integers(0, 256, int(rng.integers(1, 9000)),
                                                        np.uint8))
    for i in range(10):
        buf = bytearray(raw)
        for pos in rng.integers(0, len(raw), 8):
            buf[int(pos)] = int(rng.integers(32, 127))
        cases[f"byte flips {i}"] = bytes(buf)
    cases["a folder"] = lambda p: p.mkdir()
    if hasattr(os, "mkfifo"):  # reading a pipe would block: it must be refused unread
        cases["a named pipe"] = os.mkfifo
    cases["no such file"] = lambda p: None
    return cases


def _with_metajson(raw: bytes, path: Path, text: str) -> None:
    path.write_bytes(raw)
    with fits.open(path, mode="update") as hdul:
        hdul[1].header["METAJSON"] = text


def _mask_cases(good: Path, rng: np.random.Generator) -> dict[str, object]:
    hdu = fits.open(good)[0]
    m, h = np.asarray(hdu.data), hdu.header
    top = int(m.max())
    ids_where = np.argwhere(m > 0)
    one = tuple(ids_where[0]) if len(ids_where) else (0, 0, 0)

    def img(data, header=h):
        return fits.HDUList([fits.PrimaryHDU(data, header)])

    def shifted(key, delta):
        hh = h.copy()
        hh[key] = hh[key] + delta
        return img(m, hh)

    neg, huge, extra = m.copy(), m.copy(), m.copy()
    neg[one] = -1
    huge[one] = 2**31 - 1
    extra[0, 0, 0] = top + 5
    cases: dict[str, object] = {
        "valid": img(m),
        "int16 mask": img(m.astype(np.int16)),
        "uint8 mask": img(m.astype(np.uint8)),
        "int64 mask": img(m.astype(np.int64)),
        "float mask, whole numbers": img(m.astype(np.float32)),
        "float mask, fractions": img(m.astype(np.float32) + 0.25),
        "float mask with NaN": img(np.where(m > 0, np.nan, 0).astype(np.float32)),
        "one channel short": img(m[:-1]),
        "transposed": img(np.ascontiguousarray(m.transpose(0, 2, 1)[:, :, :-1])),
        "2D": img(m[0]),
        "4D": img(m[None]),
        "negative id": img(neg),
        "huge id": img(huge),
        "an id the catalogue lacks": img(extra),
        "all background": img(np.zeros_like(m)),
        "ids renumbered": img(np.where(m > 0, m + 1000, 0).astype(np.int32)),
        "WCS shifted 3 pixels": shifted("CRPIX1", 3.0),
        "other channel width": shifted("CDELT3", 0.05),
        "other velocity origin": shifted("CRVAL3", 1.0),
        "no WCS": img(m, fits.Header()),
        "a table, not an image": fits.HDUList(
            [fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
                [fits.Column("a", "J", array=np.arange(3))])]),
    }
    raw = good.read_bytes()
    for n in sorted({int(x) for x in rng.integers(1, len(raw), 8)}):
        cases[f"cut at {n} of {len(raw)} B"] = raw[:n]
    cases["random bytes"] = bytes(rng.integers(0, 256, 3000, np.uint8))
    cases["no such file"] = lambda p: None
    return cases


def _make(path: Path, content: object) -> None:
    if isinstance(content, Table):
        write_catalog(content, path)
    elif isinstance(content, fits.HDUList):
        content.writeto(path, overwrite=True)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        content(path)


def test_catalog_and_mask_fuzz(detection, tmp_path, fuzz_tally):
    cube_path, out = detection
    failures = Failures()
    rng = np.random.default_rng(0)
    with quiet():
        cube = read_cube(cube_path)
        good_catalog = read_catalog(out / "catalog.fits")
        outcomes = {}
        for i, (name, content) in enumerate(_catalog_cases(out / "catalog.fits", rng).items()):
            path = tmp_path / f"cat{i}.fits"
            _make(path, content)
            outcomes["catalogue: " + name] = run_case(
                fuzz_tally, failures, "catalogue", name, lambda p=path: read_catalog(p))
        for i, (name, content) in enumerate(_mask_cases(out / "mask.fits", rng).items()):
            path = tmp_path / f"mask{i}.fits"
            _make(path, content)
            outcomes["mask: " + name] = run_case(
                fuzz_tally, failures, "mask", name,
                lambda p=path: read_mask(p, cube=cube, catalog=good_catalog))
    failures.check()
    expect_message = {
        "catalogue: no clump_id column": "no 'clump_id' column",
        "catalogue: clump_id repeated": "repeat",
        "catalogue: METAJSON garbage": "METAJSON",
        "mask: one channel short": "pass the cube that was detected",
        "mask: WCS shifted 3 pixels": "another grid",
        "mask: other channel width": "another grid",
        "mask: negative id": "negative",
        "mask: huge id": "renumber",
        "mask: float mask, fractions": "non-integer",
        "mask: ids renumbered": "not in",
        "mask: all background": "not in",
    }
    for key, match in expect_message.items():
        outcome, exc = outcomes[key]
        assert outcome == "message" and match in str(exc), (key, exc)
    for key in ("catalogue: valid", "catalogue: no rows", "mask: valid", "mask: int16 mask",
                "mask: float mask, whole numbers", "mask: no WCS"):
        assert outcomes[key][0] == "result", (key, outcomes[key])


def test_cli_verify_fuzz(detection, tmp_path, capsys, fuzz_tally):
    """``ssclump verify --verify-only`` on folders with a broken catalogue, mask or labels:
    exit 0, or exit 2 with one line and the catalogue untouched."""
    cube_path, out = detection
    failures = Failures()
    kind = "ssclump verify"
    rng = np.random.default_rng(1)
    good_cat = (out / "catalog.fits").read_bytes()
    good_mask = (out / "mask.fits").read_bytes()
    cat_cases = _catalog_cases(out / "catalog.fits", rng)
    mask_cases = _mask_cases(out / "mask.fits", rng)
    runs: list[tuple[str, str, object, list[str]]] = []
    # Every mask case and a spread of catalogue cases (each run loads the model).
    runs += [(f"mask {n}", "mask.fits", c, []) for n, c in mask_cases.items()]
    runs += [(f"catalogue {n}", "catalog.fits", c, []) for n, c in list(cat_cases.items())[::2]]
    labels = tmp_path / "labels.csv"
    labels.write_text("clump_id,label\n1,1\n77,0\n")  # 77 is not a candidate
    runs.append(("labels of ids not in the catalogue", "", None, ["--labels", str(labels)]))
    other = tmp_path / "other.fits"
    other.write_bytes(valid_cube_bytes((8, 12, 13)))
    runs.append(("the cube of another shape", "", None, ["--cube", str(other)]))

    with quiet():
        for i, (name, target, content, extra) in enumerate(runs):
            d = tmp_path / f"run{i}"
            d.mkdir()
            (d / "catalog.fits").write_bytes(good_cat)
            (d / "mask.fits").write_bytes(good_mask)
            if target:
                (d / target).unlink()
                _make(d / target, content)
            before = (d / "catalog.fits").read_bytes() if (d / "catalog.fits").is_file() \
                else None
            argv = ["verify", str(d), "--cube", str(cube_path), "--verify-only", "--quiet",
                    "--device", "cpu", *extra]
            if "--cube" in extra:
                argv = ["verify", str(d), "--verify-only", "--quiet", "--device", "cpu", *extra]
            capsys.readouterr()
            outcome, rc = run_case(fuzz_tally, failures, kind, name, lambda a=argv: main(a),
                                   classify=exit_status)
            if isinstance(rc, BaseException):
                continue
            err = [ln for ln in capsys.readouterr().err.splitlines() if "error:" in ln]
            if rc == 2:
                if len(err) != 1:
                    failures.add(kind, name, f"exit 2 without one error line: {err}")
                after = (d / "catalog.fits").read_bytes() if (d / "catalog.fits").is_file() \
                    else None
                if after != before:
                    fuzz_tally.add(kind, "partial output")
                    failures.add(kind, name, "a failed verify changed catalog.fits")
            elif rc != 0:
                failures.add(kind, name, f"exit status {rc}")
            temps = [p.name for p in d.iterdir() if p.name.startswith(".")]
            if temps:
                fuzz_tally.add(kind, "partial output")
                failures.add(kind, name, f"temporary files left: {temps}")
            shutil.rmtree(d, ignore_errors=True)
    failures.check()
