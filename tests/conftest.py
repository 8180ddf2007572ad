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


# -- fuzz summary ------------------------------------------------------------------------
# The fuzz tests (tests/test_fuzz_*.py) count every malformed input they try, per kind and
# outcome, through the ``fuzz_tally`` fixture; the table is printed at the end of the run.
# Under pytest-xdist each worker hands its counts to the controller in ``workeroutput``.

_FUZZ_OUTCOMES = ("result", "message", "traceback", "partial output")


class FuzzTally(dict):
    """``{kind: {outcome: count}}`` of the malformed inputs tried in this process."""

    def add(self, kind: str, outcome: str) -> None:
        """Count one case of ``kind`` that ended in ``outcome`` (one of _FUZZ_OUTCOMES)."""
        assert outcome in _FUZZ_OUTCOMES, outcome
        per_kind = self.setdefault(kind, {})
        per_kind[outcome] = per_kind.get(outcome, 0) + 1


_FUZZ_STASH = pytest.StashKey[FuzzTally]()


def pytest_configure(config):
    config.stash[_FUZZ_STASH] = FuzzTally()


@pytest.fixture(scope="session")
def fuzz_tally(request) -> FuzzTally:
    """The run's fuzz counter: ``fuzz_tally.add(kind, outcome)``."""
    return request.config.stash[_FUZZ_STASH]


def _merge_fuzz(into: dict, counts: dict) -> None:
    for kind, outcomes in counts.items():
        for outcome, n in outcomes.items():
            into.setdefault(kind, {})
            into[kind][outcome] = into[kind].get(outcome, 0) + int(n)


def pytest_sessionfinish(session):
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller prints the table
        import json

        workeroutput["ssclump_fuzz"] = json.dumps(session.config.stash[_FUZZ_STASH])


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    import json

    counts = getattr(node, "workeroutput", {}).get("ssclump_fuzz")
    if counts:
        _merge_fuzz(node.config.stash[_FUZZ_STASH], json.loads(counts))


def pytest_terminal_summary(terminalreporter, config):
    tally = config.stash.get(_FUZZ_STASH, {})
    if not tally:
        return
    tr = terminalreporter
    tr.section("malformed-input fuzz cases")
    width = max(len(k) for k in tally) + 2
    tr.write_line(f"{'kind':<{width}}{'tried':>7}" + "".join(f"{o:>16}" for o in _FUZZ_OUTCOMES))
    totals = dict.fromkeys(_FUZZ_OUTCOMES, 0)
    for kind in sorted(tally):
        row = tally[kind]
        for o in _FUZZ_OUTCOMES:
            totals[o] += row.get(o, 0)
        tr.write_line(f"{kind:<{width}}{sum(row.values()):>7}"
                      + "".join(f"{row.get(o, 0):>16}" for o in _FUZZ_OUTCOMES))
    tr.write_line(f"{'total':<{width}}{sum(totals.values()):>7}"
                  + "".join(f"{totals[o]:>16}" for o in _FUZZ_OUTCOMES))
