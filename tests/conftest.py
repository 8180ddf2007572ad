"""Shared fixtures: the bundled L1448 13CO cube and the reference files in tests/data."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS_DATA = Path(__file__).parent / "data"
L1448_PATH = Path(__file__).parent.parent / "glue_ssclump" / "data" / "l1448_13co.fits"


@pytest.fixture(scope="session")
def l1448_path() -> Path:
    """Path of the real L1448 13CO(1-0) cube shipped with the package."""
    return L1448_PATH


@pytest.fixture(scope="session")
def tests_data() -> Path:
    """The tests/data folder (reference catalogues and CUPID masks)."""
    return TESTS_DATA


@pytest.fixture(scope="session")
def l1448_cube(l1448_path):
    """The L1448 cube read once per session (do not modify it in a test)."""
    from glue_ssclump.core.cube import read_cube

    return read_cube(l1448_path)


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread_per_xdist_worker():
    """Under ``pytest -n 2`` each worker gets one core: two torch threads per worker
    would oversubscribe the machine (measured 1.5-5x slower on 2 busy cores)."""
    import os

    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)
    yield
