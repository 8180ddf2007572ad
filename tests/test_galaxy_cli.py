"""``ssclump galaxy synth | train | detect | eval`` (issue #13)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.table import Table

from glue_ssclump.cli import main


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("gal")
    assert main(["galaxy", "synth", str(out), "--n", "1", "--seed", "77"]) == 0
    return out


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory, synth_dir):
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    rc = main(["galaxy", "train", "--out", str(path), "--n-train", "2", "--epochs", "1",
               "--batch-size", "2", "--crop", "96", "--device", "cpu", "--quiet"])
    assert rc == 0 and path.is_file()
    return path


def test_synth_writes_fits_truth_png(synth_dir):
    names = sorted(p.name for p in synth_dir.iterdir())
    assert names == ["galaxy_0000.fits", "galaxy_0000.png", "galaxy_0000_truth.ecsv"]
    truth = Table.read(synth_dir / "galaxy_0000_truth.ecsv")
    assert {"x", "y", "class", "flux_ratio"} <= set(truth.colnames)


def test_detect_fits_and_png(tmp_path, synth_dir, tiny_checkpoint, capsys):
    out = tmp_path / "det"
    rc = main(["galaxy", "detect", str(synth_dir / "galaxy_0000.fits"), "--out", str(out),
               "--model", str(tiny_checkpoint), "--score-min", "0", "--quiet"])
    assert rc == 0
    assert "candidates" in capsys.readouterr().out
    table = Table.read(out / "clumps.ecsv")
    assert table.colnames[:3] == ["clump_id", "x", "y"] and table["x"].unit == "pix"
    assert Table.read(out / "clumps.fits").colnames == table.colnames
    assert (out / "overlay.png").read_bytes()[:4] == b"\x89PNG"
    rc = main(["galaxy", "detect", str(synth_dir / "galaxy_0000.png"), "--out",
               str(tmp_path / "png"), "--model", str(tiny_checkpoint), "--quiet"])
    assert rc == 0
    assert np.all(np.isnan(Table.read(tmp_path / "png" / "clumps.ecsv")["flux_ratio"]))


def test_eval_on_a_synth_folder(tmp_path, synth_dir, tiny_checkpoint, capsys):
    rc = main(["galaxy", "eval", str(synth_dir), "--out", str(tmp_path), "--model",
               str(tiny_checkpoint), "--quiet"])
    assert rc == 0
    report = json.loads((tmp_path / "evaluation.json").read_text())
    assert [r["method"] for r in report["results"]] == ["frcnn", "baseline"]
    assert report["results"][1]["summary"]["n_images"] == 1
    assert (tmp_path / "evaluation.png").is_file()
    assert "baseline: score >= 0.3" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["galaxy", "detect", "missing.fits", "--out", "o"], "does not exist"),
    (["galaxy", "detect", "a.fits", "b.fits", "--out", "o"], "got 2 files"),
    (["galaxy", "detect", "bad.fits", "--out", "o"], "not a readable FITS"),
    (["galaxy", "detect", "GAL", "--out", "o", "--psf-fwhm", "0"], "FWHM"),
    (["galaxy", "detect", "GAL", "--out", "o", "--model", "bad.fits"], "not a readable"),
    (["galaxy", "train"], "give --out"),
    (["galaxy", "eval", "empty", "--out", "o"], "no galaxy_"),
])
def test_bad_input_exits_2(tmp_path, monkeypatch, capsys, synth_dir, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.fits").write_text("x")
    (tmp_path / "b.fits").write_text("x")
    (tmp_path / "bad.fits").write_text("not a fits file")
    (tmp_path / "empty").mkdir()
    argv = [str(synth_dir / "galaxy_0000.fits") if a == "GAL" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
