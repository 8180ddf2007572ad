"""run_in_child: results, progress, callbacks, errors, cancel and a dying child."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from glue_ssclump.core.child_process import WorkerProcessError, run_in_child
from glue_ssclump.core.errors import SSClumpError
from glue_ssclump.core.progress import Cancelled, Progress


# Module-level, so the spawned child can import them by name.
def _square_steps(n: int, progress: Progress, on_step=None) -> dict:
    for i in range(n):
        progress.update((i + 1) / n, f"step {i + 1}")
        if on_step is not None:
            on_step({"i": i, "pid": os.getpid()})
    return {"squares": [i * i for i in range(n)], "pid": os.getpid()}


def _bad_input(progress: Progress) -> None:
    raise SSClumpError("the cube has no spectral axis: give a PPV cube")


def _until_cancelled(progress: Progress) -> None:
    while True:
        progress.update(0.5, "waiting for cancel")


def _dies(progress: Progress) -> None:
    progress.update(0.1)
    os._exit(3)


def test_result_progress_and_callbacks_come_back_from_another_process():
    seen: list[tuple[float, str]] = []
    steps: list[dict] = []
    progress = Progress(lambda f, m: seen.append((f, m)), min_interval=0.0)
    out = run_in_child(_square_steps, 5, progress=progress, on_step=steps.append,
                       forward=("on_step",))
    assert out["squares"] == [0, 1, 4, 9, 16]
    assert out["pid"] != os.getpid()
    assert [s["i"] for s in steps] == [0, 1, 2, 3, 4]
    assert seen[-1] == (1.0, "step 5")
    assert [f for f, _ in seen] == sorted(f for f, _ in seen)


def test_progress_span_maps_the_childs_fraction():
    seen: list[float] = []
    root = Progress(lambda f, m: seen.append(f), min_interval=0.0)
    run_in_child(_square_steps, 2, progress=root.span(0.5, 1.0))
    assert seen == [0.75, 1.0]


def test_exception_keeps_its_type_message_and_the_childs_traceback():
    with pytest.raises(SSClumpError, match="no spectral axis") as info:
        run_in_child(_bad_input)
    assert "_bad_input" in str(info.value.__cause__)


def test_cancel_reaches_the_child():
    progress = Progress(min_interval=0.0)
    progress.callback = lambda f, m: progress.cancel()
    with pytest.raises(Cancelled):
        run_in_child(_until_cancelled, progress=progress)


def test_a_child_that_dies_gives_a_clear_error():
    with pytest.raises(WorkerProcessError, match="exit code 3"):
        run_in_child(_dies)


def _write_pid_and_wait(path: str, progress: Progress) -> None:
    with open(path, "w") as fh:
        fh.write(str(os.getpid()))
    while True:
        progress.update(0.5)
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purpose (it runs nothing; its parent reaps it)
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_child_ends_when_its_parent_is_killed(tmp_path):
    pid_file = tmp_path / "child.pid"
    here = [str(Path(__file__).parent)]
    code = (f"import sys; sys.path[:0] = {here!r}; import test_child_process as t; "
            "from glue_ssclump.core.child_process import run_in_child; "
            f"run_in_child(t._write_pid_and_wait, {str(pid_file)!r})")
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 120
        while not pid_file.exists() or not pid_file.read_text():
            assert parent.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        child = int(pid_file.read_text())
        assert _alive(child)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 30
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(child)
