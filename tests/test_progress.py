"""The shared progress / cancellation API."""

from __future__ import annotations

import threading

import pytest

from glue_ssclump.core.progress import Cancelled, Progress, ensure_progress


def test_spans_map_to_the_parent_range():
    seen = []
    root = Progress(lambda f, m: seen.append((round(f, 3), m)), min_interval=0)
    child = root.span(0.5, 1.0, "stage 2")
    child.update(0.5)
    grandchild = child.span(0.0, 0.5)
    grandchild.update(1.0, "deep")
    assert seen == [(0.75, "stage 2"), (0.75, "deep")]


def test_throttling_keeps_the_final_update():
    seen = []
    root = Progress(lambda f, m: seen.append(f), min_interval=3600)
    for i in range(10):
        root.update(i / 10)
    root.update(1.0)
    assert seen == [0.0, 1.0]


def test_cancel_from_another_thread_raises_at_next_update():
    progress = Progress()
    t = threading.Thread(target=progress.cancel)
    t.start()
    t.join()
    assert progress.cancelled
    with pytest.raises(Cancelled):
        progress.update(0.1)
    # children share the cancellation
    with pytest.raises(Cancelled):
        progress.span(0, 0.5).check()


def test_iterate_reports_each_item():
    seen = []
    p = Progress(lambda f, m: seen.append(f), min_interval=0)
    assert list(p.iterate([1, 2, 3, 4])) == [1, 2, 3, 4]
    assert seen[-1] == 1.0 and len(seen) == 5


def test_ensure_progress():
    p = Progress()
    assert ensure_progress(p) is p
    assert isinstance(ensure_progress(None), Progress)
