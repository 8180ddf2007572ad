"""Cube reading (real L1448 + small synthetic HDUs) and the noise estimate."""

from __future__ import annotations

import logging

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits

from glue_ssclump.core.cube import (
    CubeError,
    cube_from_array,
    estimate_rms,
    mask_header,
    read_cube,
)

C_KMS = 299792.458


def make_header(
    ctypes=("GLON-CAR", "GLAT-CAR", "VRAD"),
    cunits=("deg", "deg", "m/s"),
    crvals=(30.0, 0.0, 10000.0),
    cdelts=(-0.01, 0.01, 500.0),
    shape=(4, 6, 5),
    **extra,
) -> fits.Header:
    """A FITS header for numpy ``shape`` (reversed axes) with the given axes."""
    h = fits.Header()
    n = len(ctypes)
    for i in range(n):
        h[f"CTYPE{i + 1}"] = ctypes[i]
        if cunits[i]:
            h[f"CUNIT{i + 1}"] = cunits[i]
        h[f"CRVAL{i + 1}"] = crvals[i]
        h[f"CDELT{i + 1}"] = cdelts[i]
        h[f"CRPIX{i + 1}"] = 1.0
    for k, v in extra.items():
        h[k] = v
    return h


def hdu(data, header) -> fits.PrimaryHDU:
    return fits.PrimaryHDU(data=np.asarray(data, dtype=np.float32), header=header)


def small(shape=(4, 6, 5), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 0.1, shape).astype(np.float32)


# -- the real cube ------------------------------------------------------------------


def test_read_l1448(l1448_path, caplog):
    with caplog.at_level(logging.WARNING):
        cube = read_cube(l1448_path)
    assert cube.shape == (53, 105, 105)
    assert cube.data.dtype == np.float32
    assert cube.source == str(l1448_path)
    assert cube.frame == "icrs"
    assert cube.lon_lat_names == ("RA", "DEC")
    assert cube.spectral_type == "VOPT"
    assert cube.unit == "K"
    assert sum("no BUNIT" in r.getMessage() for r in caplog.records) == 1
    assert cube.velocity[0] == pytest.approx(2.5281949, abs=1e-6)
    assert cube.velocity[-1] == pytest.approx(5.9822226, abs=1e-6)
    assert cube.channel_width == pytest.approx(0.06642361, rel=1e-6)
    assert cube.pixel_scale * 3600 == pytest.approx(23.0, rel=1e-6)
    raw = fits.getdata(l1448_path)
    np.testing.assert_array_equal(cube.data, raw)
    assert cube.header["CUNIT3"].strip() in ("km s-1", "km/s")
    assert cube.header["CTYPE3"] == "VOPT"
    assert cube.header["BUNIT"] == "K"


def test_pixel_to_world_roundtrip(l1448_cube):
    x, y, z = np.array([0.0, 10.0, 104.0]), np.array([0.0, 50.0, 104.0]), np.array([0, 5, 52])
    lon, lat, vel = l1448_cube.pixel_to_world(x, y, z)
    np.testing.assert_allclose(vel, l1448_cube.velocity[z])
    assert lon[0] == pytest.approx(51.74010318, abs=1e-7)
    assert lat[0] == pytest.approx(30.30194469, abs=1e-7)
    bx, by, bz = l1448_cube.world_to_pixel(lon, lat, vel)
    np.testing.assert_allclose(bx, x, atol=1e-6)
    np.testing.assert_allclose(by, y, atol=1e-6)
    np.testing.assert_allclose(bz, z, atol=1e-6)


def test_mask_hdu_roundtrip(l1448_cube, tmp_path):
    mask = (l1448_cube.data > 2).astype(np.int32)
    path = tmp_path / "mask.fits"
    l1448_cube.to_hdu(mask).writeto(path)
    back = fits.open(path)[0]
    assert back.data.dtype.kind == "i"
    np.testing.assert_array_equal(back.data, mask)
    assert "BUNIT" not in back.header
    again = read_cube(path)
    np.testing.assert_allclose(
        np.array(again.pixel_to_world(3, 4, 5)), np.array(l1448_cube.pixel_to_world(3, 4, 5))
    )
    with pytest.raises(CubeError, match="does not match the cube"):
        l1448_cube.to_hdu(mask[:, :, :10])


# -- spectral axes --------------------------------------------------------------------


def test_galactic_vrad_m_per_s():
    h = make_header(BUNIT="K")
    cube = read_cube(hdu(small(), h))
    assert cube.frame == "galactic"
    assert cube.lon_lat_names == ("GLON", "GLAT")
    assert cube.spectral_type == "VRAD"
    np.testing.assert_allclose(cube.velocity, [10.0, 10.5, 11.0, 11.5])
    lon, lat, vel = cube.pixel_to_world(0, 0, 1)
    assert (float(lon), float(lat), float(vel)) == pytest.approx((30.0, 0.0, 10.5))
    assert cube.notes == []


def test_velo_kms_kept():
    h = make_header(ctypes=("RA---TAN", "DEC--TAN", "VELO-LSR"), cunits=("deg", "deg", "km/s"),
                    crvals=(50.0, 30.0, -5.0), cdelts=(-0.01, 0.01, 0.25), BUNIT="K")
    cube = read_cube(hdu(small(), h))
    assert cube.frame in ("icrs", "fk5")
    assert cube.lon_lat_names == ("RA", "DEC")
    assert cube.spectral_type in ("VELO", "VRAD", "VOPT")
    np.testing.assert_allclose(cube.velocity, [-5.0, -4.75, -4.5, -4.25], atol=1e-9)


@pytest.mark.parametrize("restkey", ["RESTFRQ", "RESTFREQ"])
def test_freq_axis_to_radio_velocity(restkey):
    f0 = 110.2013543e9
    df = -61.0e3
    h = make_header(ctypes=("GLON-CAR", "GLAT-CAR", "FREQ"), cunits=("deg", "deg", "Hz"),
                    crvals=(30.0, 0.0, f0), cdelts=(-0.01, 0.01, df), BUNIT="K",
                    **{restkey: f0})
    cube = read_cube(hdu(small(), h))
    assert cube.spectral_type == "VRAD"
    assert cube.header["CTYPE3"].startswith("VRAD")
    freqs = f0 + df * np.arange(4)
    np.testing.assert_allclose(cube.velocity, C_KMS * (1 - freqs / f0), rtol=1e-9, atol=1e-9)
    assert any("FREQ" in n for n in cube.notes)


def test_nan_blanks_kept():
    data = small()
    data[:, 0, :] = np.nan
    cube = read_cube(hdu(data, make_header(BUNIT="K")))
    assert np.isnan(cube.data[:, 0, :]).all()
    assert np.isfinite(cube.data[:, 1:, :]).all()


def test_bunit_mk_converted():
    data = small()
    cube = read_cube(hdu(data * 1000, make_header(BUNIT="mK")))
    assert cube.unit == "K"
    np.testing.assert_allclose(cube.data, data, rtol=1e-6)


def test_jy_per_beam_with_beam_converted_to_k():
    f0 = 110.2013543e9
    bmaj = 50.0 / 3600
    h = make_header(BUNIT="Jy/beam", BMAJ=bmaj, BMIN=bmaj, BPA=0.0, RESTFRQ=f0,
                    ctypes=("GLON-CAR", "GLAT-CAR", "VRAD"), cdelts=(-0.01, 0.01, 500.0))
    data = np.ones((4, 6, 5), dtype=np.float32)
    cube = read_cube(hdu(data, h))
    assert cube.unit == "K"
    from radio_beam import Beam

    beam = Beam(major=50 * u.arcsec, minor=50 * u.arcsec, pa=0 * u.deg)
    # velocity -> frequency, radio convention
    freqs = f0 * (1 - cube.velocity / C_KMS) * u.Hz
    expected = (1 * u.Jy).to(u.K, beam.jtok_equiv(freqs)).value
    np.testing.assert_allclose(cube.data[:, 0, 0], expected, rtol=1e-4)
    assert any("converted" in n for n in cube.notes)


def test_jy_per_beam_without_beam_kept_with_note():
    h = make_header(BUNIT="Jy/beam")
    cube = read_cube(hdu(small(), h))
    assert cube.unit != "K"
    assert "Jy" in cube.unit
    assert any("could not be converted to K" in n for n in cube.notes)


def test_degenerate_stokes_dropped():
    data = small()
    h = make_header(
        ctypes=("RA---TAN", "DEC--TAN", "VRAD", "STOKES"), cunits=("deg", "deg", "m/s", ""),
        crvals=(50.0, 30.0, 0.0, 1.0), cdelts=(-0.01, 0.01, 200.0, 1.0), BUNIT="K",
    )
    cube = read_cube(hdu(data[None], h))
    assert cube.shape == (4, 6, 5)
    np.testing.assert_array_equal(cube.data, data)
    assert cube.wcs.naxis == 3
    assert cube.header["NAXIS"] == 3 and "CTYPE4" not in cube.header
    np.testing.assert_allclose(cube.velocity, [0.0, 0.2, 0.4, 0.6], atol=1e-9)
    assert any("Stokes" in n for n in cube.notes)


def test_read_from_file_and_hdulist(tmp_path):
    path = tmp_path / "c.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(small(), make_header(BUNIT="K"))]).writeto(path)
    assert read_cube(path).shape == (4, 6, 5)
    assert read_cube(fits.open(path)).shape == (4, 6, 5)
    cube = cube_from_array(small(), dict(make_header(BUNIT="K")), source="x")
    assert cube.source == "x" and cube.shape == (4, 6, 5)


# -- errors ---------------------------------------------------------------------------


def test_error_2d_image():
    h = make_header(ctypes=("RA---TAN", "DEC--TAN"), cunits=("deg", "deg"), crvals=(0, 0),
                    cdelts=(-0.01, 0.01))
    with pytest.raises(CubeError, match="2D image.*give a 3D"):
        read_cube(hdu(np.zeros((6, 5)), h))


def test_error_spectral_axis_first():
    h = make_header(ctypes=("VRAD", "GLON-CAR", "GLAT-CAR"), cunits=("m/s", "deg", "deg"),
                    crvals=(0.0, 30.0, 0.0), cdelts=(500.0, -0.01, 0.01))
    with pytest.raises(CubeError, match="FITS axis 1, expected axis 3.*reorder"):
        read_cube(hdu(small(shape=(5, 6, 4)), h))


@pytest.mark.parametrize(
    "ctype3, message",
    [("LINEAR", "no spectral axis.*fix CTYPE3"), ("GLON-TAN", "cannot be parsed.*spectral one")],
)
def test_error_third_axis_not_spectral(ctype3, message):
    h = make_header(ctypes=("RA---TAN", "DEC--TAN", ctype3), cunits=("deg", "deg", "deg"))
    with pytest.raises(CubeError, match=message):
        read_cube(hdu(small(), h))


def test_error_no_wcs():
    with pytest.raises(CubeError, match="no WCS.*add the celestial"):
        read_cube(fits.PrimaryHDU(small()))


def test_error_all_nan():
    with pytest.raises(CubeError, match="every voxel is NaN"):
        read_cube(hdu(np.full((4, 6, 5), np.nan), make_header(BUNIT="K")))


def test_error_several_stokes_planes():
    h = make_header(
        ctypes=("RA---TAN", "DEC--TAN", "VRAD", "STOKES"), cunits=("deg", "deg", "m/s", ""),
        crvals=(50.0, 30.0, 0.0, 1.0), cdelts=(-0.01, 0.01, 200.0, 1.0),
    )
    with pytest.raises(CubeError, match="2 Stokes planes.*pick one"):
        read_cube(hdu(np.stack([small(), small()]), h))


def test_error_freq_without_rest_frequency():
    h = make_header(ctypes=("GLON-CAR", "GLAT-CAR", "FREQ"), cunits=("deg", "deg", "Hz"),
                    crvals=(30.0, 0.0, 110.2e9), cdelts=(-0.01, 0.01, -61e3))
    with pytest.raises(CubeError, match="no rest frequency.*add RESTFRQ"):
        read_cube(hdu(small(), h))


def test_error_not_a_cube_input():
    with pytest.raises(CubeError, match="FITS path"):
        read_cube(np.zeros((3, 3, 3)))
    with pytest.raises(CubeError, match="no such file"):
        read_cube("/nonexistent/cube.fits")


# -- noise ----------------------------------------------------------------------------


def test_rms_pure_noise():
    data = np.random.default_rng(1).normal(0.0, 0.3, (40, 50, 50)).astype(np.float32)
    assert estimate_rms(data) == pytest.approx(0.3, rel=0.05)


def test_rms_noise_plus_bright_emission_everywhere():
    rng = np.random.default_rng(2)
    sigma = 0.2
    nv, ny, nx = 120, 40, 40
    v = np.arange(nv)[:, None, None]
    # every spectrum has a bright line (10-40 sigma) at its own velocity, so every
    # channel holds emission somewhere and the global distribution is far from Gaussian
    centre = rng.uniform(20, 100, (1, ny, nx))
    width = rng.uniform(3, 8, (1, ny, nx))
    peak = rng.uniform(10, 40, (1, ny, nx)) * sigma
    line = peak * np.exp(-0.5 * ((v - centre) / width) ** 2)
    data = (line + rng.normal(0.0, sigma, (nv, ny, nx))).astype(np.float32)
    assert np.std(data) > 3 * sigma
    assert estimate_rms(data) == pytest.approx(sigma, rel=0.06)


def test_rms_fallback_positive_baseline():
    rng = np.random.default_rng(3)
    data = (5.0 + rng.normal(0.0, 0.1, (30, 30, 30))).astype(np.float32)
    assert estimate_rms(data) == pytest.approx(0.1, rel=0.05)


def test_rms_l1448(l1448_cube):
    rms = estimate_rms(l1448_cube.data)
    assert 0.12 <= rms <= 0.16


def test_rms_ignores_nan_and_errors():
    data = np.random.default_rng(4).normal(0.0, 1.0, (20, 20, 20))
    data[:5] = np.nan
    assert estimate_rms(data) == pytest.approx(1.0, rel=0.05)
    with pytest.raises(CubeError, match="no finite values"):
        estimate_rms(np.full((3, 3, 3), np.nan))
    with pytest.raises(CubeError, match="give the rms by hand"):
        estimate_rms(np.zeros((3, 3, 3)))


def test_mask_header_keeps_wcs_drops_brightness_keywords():
    h = fits.Header({"NAXIS": 3, "CTYPE1": "GLON-CAR", "CTYPE2": "GLAT-CAR",
                     "CTYPE3": "VRAD", "CDELT3": 100.0, "BUNIT": "K", "BMAJ": 0.01,
                     "BMIN": 0.01, "BPA": 0.0, "BSCALE": 1.0, "BZERO": 0.0})
    out = mask_header(h)
    assert out is not h and "BUNIT" in h  # a copy; the cube's header is untouched
    for key in ("BUNIT", "BMAJ", "BMIN", "BPA", "BSCALE", "BZERO"):
        assert key not in out
    assert out["CTYPE3"] == "VRAD" and out["CDELT3"] == 100.0
