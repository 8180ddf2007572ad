"""The ssclump command: detect, verify, synth, errors with exit codes."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from glue_ssclump.cli import main
from glue_ssclump.core.catalog import read_catalog
from glue_ssclump.core.labels import write_labels_csv


@pytest.fixture(scope="module")
def detected(tmp_path_factory, l1448_path):
    out = tmp_path_factory.mktemp("det")
    assert main(["detect", str(l1448_path), "--method", "fellwalker", "--rms", "0.15",
                 "--param", "MinDip=2rms", "--out", str(out), "--quiet"]) == 0
    return out


def test_detect_writes_catalogue_and_mask_with_wcs(detected, l1448_path, capsys):
    cat = read_catalog(detected / "catalog.fits")
    mask = fits.open(detected / "mask.fits")[0]
    assert mask.data.dtype.byteorder in "<>=" and mask.data.dtype.kind == "i"
    assert mask.data.dtype.itemsize == 4 and mask.data.max() == len(cat)
    pix = np.array([[0, 0, 0], [50, 20, 10], [104, 104, 52]], float)
    cube_world = WCS(fits.getheader(l1448_path)).all_pix2world(pix, 0)
    mask_world = WCS(mask.header).all_pix2world(pix, 0)
    np.testing.assert_allclose(mask_world[:, :2], cube_world[:, :2], rtol=1e-12)
    np.testing.assert_allclose(mask_world[:, 2], cube_world[:, 2], rtol=1e-9)  # both m/s
    assert mask.header["CUNIT3"].strip() == "km s-1"
    assert cat["peak_vel"].unit == "km / s" and cat.meta["params"]["MinDip"] == 0.3


def test_verify_adds_columns_and_writes_outputs(detected, l1448_path, capsys):
    cat = read_catalog(detected / "catalog.fits")
    order = np.argsort(np.asarray(cat["snr_peak"]))
    ids = np.asarray(cat["clump_id"])
    labels = {int(i): 0 for i in ids[order[:6]]} | {int(i): 1 for i in ids[order[-6:]]}
    write_labels_csv(detected / "labels.csv", labels)
    rc = main(["verify", str(detected), "--cube", str(l1448_path), "--labels",
               str(detected / "labels.csv"), "--epochs", "1", "--init", "scratch",
               "--batch-size", "32", "--device", "cpu", "--quiet"])
    assert rc == 0
    assert "kept" in capsys.readouterr().out
    new = read_catalog(detected / "catalog.fits")
    assert set(cat.colnames) | {"p_clump", "verdict", "label"} == set(new.colnames)
    np.testing.assert_array_equal(new["peak_x"], cat["peak_x"])
    assert set(np.unique(new["verdict"])) <= {"clump", "rejected", "uncertain"}
    for name in ("model.pt", "training_log.csv", "training.png"):
        assert (detected / name).is_file(), name


def test_verify_only_keeps_stored_labels(detected, l1448_path):
    before = read_catalog(detected / "catalog.fits")
    if "label" not in before.colnames:
        pytest.skip("needs the labelled run of test_verify_adds_columns_and_writes_outputs")
    assert main(["verify", str(detected), "--cube", str(l1448_path), "--verify-only",
                 "--init", str(detected / "model.pt"), "--quiet"]) == 0
    after = read_catalog(detected / "catalog.fits")
    np.testing.assert_array_equal(after["label"], before["label"])
    assert not [p for p in detected.iterdir() if p.name.startswith(".")]  # no temp files


def test_verify_defaults_to_the_ensemble_and_keeps_labels(detected, l1448_path, tmp_path,
                                                          capsys):
    import shutil

    from glue_ssclump.core.checkpoint import load_checkpoint

    run = tmp_path / "run"
    run.mkdir()
    for name in ("catalog.fits", "mask.fits"):
        shutil.copy(detected / name, run / name)
    ids = np.asarray(read_catalog(run / "catalog.fits")["clump_id"])
    write_labels_csv(run / "labels.csv", {int(ids[0]): 1, int(ids[1]): 0})
    assert main(["verify", str(run), "--cube", str(l1448_path), "--labels",
                 str(run / "labels.csv"), "--device", "cpu", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "ensemble verifier" in out and "epochs on" not in out
    assert "not trained on them (to fine-tune on them: --arch paper)" in out
    new = read_catalog(run / "catalog.fits")
    assert list(new["label"][:2]) == [1, 0] and set(new["label"][2:]) == {-1}
    assert load_checkpoint(run / "model.pt")[1]["arch"] == "ensemble"
    assert not (run / "training_log.csv").exists()


@pytest.mark.parametrize("argv, match", [
    (["synth", "x", "--preset", "nope"], "unknown preset"),
    (["verify", ".", "--cube", "c.fits", "--threshold", "abc"], "not a number, 'clusters' or 'elbow'"),
])
def test_bad_options_are_messages_not_tracebacks(argv, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's own usage error
        rc = exc.code
    assert rc == 2
    assert match in capsys.readouterr().err


def test_verify_refuses_a_mismatched_cube(detected, tmp_path, capsys):
    other = tmp_path / "other.fits"
    data = np.random.default_rng(0).normal(size=(8, 10, 10)).astype(np.float32)
    hdr = fits.getheader(detected / "mask.fits")
    fits.PrimaryHDU(data, hdr).writeto(other)
    assert main(["verify", str(detected), "--cube", str(other), "--verify-only"]) == 2
    assert "pass the cube that was detected" in capsys.readouterr().err


def test_verify_without_detection_says_what_to_run(tmp_path, l1448_path, capsys):
    assert main(["verify", str(tmp_path), "--cube", str(l1448_path)]) == 2
    assert "ssclump detect" in capsys.readouterr().err


@pytest.mark.parametrize("make, match", [
    (lambda p: fits.PrimaryHDU(np.ones((5, 5), np.float32)).writeto(p), "2D"),
    (lambda p: fits.PrimaryHDU(np.full((4, 5, 5), np.nan, np.float32)).writeto(p), "WCS"),
])
def test_bad_cubes_exit_2_with_a_message(tmp_path, capsys, make, match):
    path = tmp_path / "bad.fits"
    make(path)
    assert main(["detect", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and match.lower() in err.lower()


def test_bad_parameter_exit_2(l1448_path, tmp_path, capsys):
    assert main(["detect", str(l1448_path), "--method", "fellwalker", "--param", "Bogus=1",
                 "--out", str(tmp_path)]) == 2
    assert "no parameter 'Bogus'" in capsys.readouterr().err


def test_synth_writes_cube_and_truth(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "s"), "--seed", "3", "--shape", "16", "32", "32"]) == 0
    assert (tmp_path / "s.fits").is_file() and (tmp_path / "s_truth.ecsv").is_file()


def test_help_and_detectors(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["detect", "--help"])
    assert exc.value.code == 0
    assert "--param KEY=VALUE" in capsys.readouterr().out
    assert main(["detectors"]) == 0
    out = capsys.readouterr().out
    assert "clumpfind" in out and "fellwalker" in out and "dendrogram" in out
