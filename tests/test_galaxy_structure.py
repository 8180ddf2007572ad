"""Structured synthetic hosts (arms, texture, bars, dust lanes, resolved clumps) and
their truth rule."""

from __future__ import annotations

import numpy as np
import pytest

from glue_ssclump.core.galaxy import GalaxyError, synth_galaxies, synth_galaxy
from glue_ssclump.core.galaxy.synth_structure import (
    CLUMP_SIZE_FWHM,
    TEXTURE_SIGMA_FWHM,
    gaussian_spot,
)


def test_structured_host_keeps_the_clumps_of_the_smooth_one():
    # the structure has its own random stream: same seed, same clumps, stars, PSF, disc
    smooth_img, smooth = synth_galaxy(5, n_clumps=3, n_stars=1)
    rich_img, rich = synth_galaxy(5, n_clumps=3, n_stars=1, host="structured")
    for name in ("x", "y", "class", "g_r", "r_i"):
        assert np.array_equal(smooth[name], rich[name]), name
    assert rich.meta["psf_fwhm_pix"] == smooth.meta["psf_fwhm_pix"]
    assert smooth.meta["host"] == "smooth" and rich.meta["host"] == "structured"
    assert "structure" not in smooth.meta and rich.meta["structure"]["arms"] >= 1
    assert not np.array_equal(smooth_img.planes, rich_img.planes)
    # flux ratios are to the structured host's own light, so they move with it
    assert np.allclose(rich["flux_ratio"], rich["flux_r"] / rich.meta["host_flux_r"])


def test_structured_truth_rule_structure_is_wider_than_any_clump():
    for seed in range(6):
        _, truth = synth_galaxy(seed, host="structured")
        fwhm = truth.meta["psf_fwhm_pix"]
        s = truth.meta["structure"]
        # the texture's intrinsic FWHM exceeds twice the widest clump's
        texture_fwhm = 2.3548 * s["texture_sigma_pix"] / fwhm
        assert texture_fwhm >= 2.3548 * TEXTURE_SIGMA_FWHM[0] - 1e-9
        assert texture_fwhm > 2 * CLUMP_SIZE_FWHM[1]
        clumps = truth[truth["class"] == "clump"]
        assert np.all((clumps["size_fwhm"] >= 0) & (clumps["size_fwhm"] <= CLUMP_SIZE_FWHM[1]))
        # stars stay points; boxes grow with a resolved clump's observed FWHM
        assert np.all(truth[truth["class"] == "odd"]["size_fwhm"] == 0)
        half = truth["x_max"] - truth["x"]
        inside = (truth["x_min"] > 0) & (truth["x_max"] < 199)
        expect = np.maximum(fwhm * np.sqrt(1 + truth["size_fwhm"] ** 2), 3.0)
        assert np.allclose(half[inside], expect[inside], atol=1e-3)


def test_smooth_hosts_have_point_clumps():
    _, truth = synth_galaxy(3, n_clumps=4)
    assert np.all(truth["size_fwhm"] == 0)


def test_mixed_hosts_draw_both_kinds_and_are_reproducible():
    kinds = [t.meta["host"] for _, t in synth_galaxies(16, seed=9, host="mixed")]
    assert {"smooth", "structured"} == set(kinds)
    again = [t.meta["host"] for _, t in synth_galaxies(16, seed=9, host="mixed")]
    assert kinds == again


def test_unknown_host_is_refused_with_the_choices():
    with pytest.raises(GalaxyError, match="smooth, structured, mixed"):
        synth_galaxy(0, host="spiral")


def test_gaussian_spot_has_unit_flux_and_its_fwhm():
    yy, xx = np.mgrid[0:41, 0:41].astype(float)
    spot = gaussian_spot(xx, yy, 20.3, 19.6, 4.0)
    assert spot.sum() == pytest.approx(1.0, rel=1e-6)
    row = gaussian_spot(np.arange(-10, 10.01, 0.01), np.zeros(2001), 0.0, 0.0, 4.0)
    above = np.arange(-10, 10.01, 0.01)[row >= row.max() / 2]
    assert above.max() - above.min() == pytest.approx(4.0, abs=0.02)


def test_synth_cli_writes_structured_truth(tmp_path):
    from astropy.table import Table

    from glue_ssclump.cli import main

    assert main(["galaxy", "synth", str(tmp_path), "--n", "2", "--size", "64", "--no-png",
                 "--hosts", "structured"]) == 0
    truth = Table.read(tmp_path / "galaxy_0000_truth.ecsv")
    assert truth.meta["host"] == "structured" and "size_fwhm" in truth.colnames
