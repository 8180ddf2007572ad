"""The dendrogram detector + build_catalog against external results on the real L1448 cube.

References (tests/data/README.md): ``l1448_structure_catalog.fits`` (30 rows, 21 inside
this cube; each the peak voxel of an astrodendro leaf, ``flux`` = sum of the leaf's
values) and ``l1448_astrodendro_leaves.csv`` (astrodendro 0.3.1, same settings).
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from glue_ssclump.core.catalog import build_catalog
from glue_ssclump.core.detectors.registry import run_detector

SETTINGS = dict(min_value=1.0, min_delta=0.5, min_npix=10)


@pytest.fixture(scope="module")
def dendro(l1448_cube):
    result = run_detector(l1448_cube.data, "dendrogram", 0.15, SETTINGS)
    cat = build_catalog(l1448_cube, result.mask, result.detector, 0.15, result.params)
    return result, cat


def peak_index(cat) -> dict[tuple[int, int, int], int]:
    """(z, y, x) of each row's peak -> row number."""
    zyx = zip(cat["peak_z"].tolist(), cat["peak_y"].tolist(), cat["peak_x"].tolist(),
              strict=True)
    return {key: i for i, key in enumerate(zyx)}


@pytest.mark.slow
def test_structure_catalog_reproduced(dendro, l1448_cube, tests_data):
    _, cat = dendro
    ref = Table.read(tests_data / "l1448_structure_catalog.fits")
    x, y, z = l1448_cube.world_to_pixel(ref["ra"], ref["dec"], np.asarray(ref["vel"]) / 1000.0)
    # the reference positions are voxel centres of this grid (up to rounding)
    assert np.abs(x - np.rint(x)).max() < 1e-3
    assert np.abs(z - np.rint(z)).max() < 1e-3
    x, y, z = (np.rint(a).astype(int) for a in (x, y, z))
    nz, ny, nx = l1448_cube.shape
    inside = (x >= 0) & (x < nx) & (y >= 0) & (y < ny) & (z >= 0) & (z < nz)
    assert inside.sum() == 21
    rows = peak_index(cat)
    reproduced = 0
    for xi, yi, zi, flux in zip(x[inside], y[inside], z[inside], ref["flux"][inside],
                                strict=True):
        i = rows.get((zi, yi, xi))
        if i is not None and cat["flux"][i] == pytest.approx(float(flux), rel=1e-4):
            reproduced += 1
    assert reproduced >= 20


@pytest.mark.slow
def test_astrodendro_leaves_reproduced(dendro, tests_data):
    result, cat = dendro
    ref = Table.read(tests_data / "l1448_astrodendro_leaves.csv", format="ascii.csv")
    assert len(cat) == len(ref) == 20 == result.n_candidates
    rows = peak_index(cat)
    for leaf in ref:
        i = rows[(int(leaf["peak_v"]), int(leaf["peak_y"]), int(leaf["peak_x"]))]
        assert cat["npix"][i] == leaf["npix"]
        assert cat["flux"][i] == pytest.approx(leaf["sum_K"], rel=1e-5)
        assert cat["peak_value"][i] >= SETTINGS["min_value"] + SETTINGS["min_delta"]
    # ids are ordered by decreasing peak value
    assert np.all(np.diff(np.asarray(cat["peak_value"])) <= 0)
    assert cat.meta["params"] == SETTINGS


def test_levels_in_rms_units(l1448_cube):
    sub = l1448_cube.data[20:40, 30:70, 30:70]
    numeric = run_detector(sub, "dendrogram", 1 / 3, dict(min_value=1.0, min_delta=0.5,
                                                           min_npix=10))
    in_rms = run_detector(sub, "dendrogram", 1 / 3, dict(min_value="3rms", min_delta="1.5rms",
                                                          min_npix=10))
    assert in_rms.params["min_value"] == pytest.approx(1.0)
    assert in_rms.params["min_delta"] == pytest.approx(0.5)
    assert numeric.n_candidates > 3
    np.testing.assert_array_equal(in_rms.mask, numeric.mask)
    # the same strings with a larger rms mean higher levels, hence fewer leaves
    higher = run_detector(sub, "dendrogram", 0.5, dict(min_value="3rms", min_delta="1.5rms",
                                                        min_npix=10))
    assert higher.n_candidates < numeric.n_candidates
