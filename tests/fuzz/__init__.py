"""Malformed-input fuzzing helpers shared by tests/test_fuzz_*.py.

Every case is run through :func:`run_case`, which sorts its end into one of the outcomes
the project allows (``result``: the reader returned; ``message``: it raised the project's
own :class:`~glue_ssclump.core.errors.SSClumpError` with a usable message) or a failure
(``traceback``: any other exception, or a message that names no fix). The outcome is
counted in the run's ``fuzz_tally`` (printed at the end of the run by tests/conftest.py).
Generators are seeded, so every run tries the same cases.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glue_ssclump.core.errors import SSClumpError


@dataclass
class Failures:
    """Failed cases of one test, reported together so one bad case hides no others."""

    items: list[str] = field(default_factory=list)

    def add(self, kind: str, name: str, what: str) -> None:
        self.items.append(f"[{kind}] {name}: {what}")

    def check(self) -> None:
        """Fail the test listing (up to 25 of) the failed cases."""
        if self.items:
            shown = "\n".join(self.items[:25])
            raise AssertionError(f"{len(self.items)} fuzz case(s) failed:\n{shown}")


def message_problem(text: str) -> str | None:
    """Why ``text`` is not a usable error message (``None`` when it is).

    The project's messages name the problem, then the fix after a ``;``, a `` - `` or
    a ``:`` (e.g. "cube.fits is truncated ...; copy the file again"), or with words such
    as "e.g." / "use" / "give", and are more than a bare exception text.
    """
    text = str(text)
    if not text.strip():
        return "empty message"
    if "Traceback" in text:
        return "message holds a traceback"
    if len(text) < 25:
        return f"message too short to name a fix: {text!r}"
    fix_words = ("e.g.", "use ", "give ", "add ", "check ", "fix ", "run ", "copy ", "pass ",
                 "choose ", "save ", "retrain", "set ", "leave ")
    if not any(sep in text for sep in ("; ", " - ", ": ")) \
            and not any(w in text.lower() for w in fix_words):
        return f"message names no fix: {text!r}"
    return None


def run_case(tally: Any, failures: Failures, kind: str, name: str,
             fn: Callable[[], Any],
             classify: Callable[[Any], str] | None = None) -> tuple[str, Any]:
    """Run one case; count and return ``(outcome, value or exception)``.

    ``outcome`` is ``"result"`` or ``"message"`` on success, ``"traceback"`` otherwise
    (the case is then added to ``failures``). ``classify`` sorts a returned value (e.g.
    the CLI's exit status 2 is a ``"message"``).
    """
    try:
        value = fn()
    except SSClumpError as exc:
        problem = message_problem(str(exc))
        if problem:
            tally.add(kind, "traceback")
            failures.add(kind, name, problem)
            return "traceback", exc
        tally.add(kind, "message")
        return "message", exc
    except Exception as exc:  # noqa: BLE001 - any other type is what the fuzzing looks for
        tally.add(kind, "traceback")
        failures.add(kind, name, f"{type(exc).__name__}: {exc}"[:300])
        return "traceback", exc
    outcome = classify(value) if classify is not None else "result"
    tally.add(kind, outcome)
    return outcome, value


def exit_status(rc: Any) -> str:
    """Outcome of a CLI run: exit 0 is a result, 2 a message, anything else a failure."""
    return {0: "result", 2: "message"}.get(rc, "traceback")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """No warnings and no log records below ERROR while many cases run."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(logging.NOTSET)


@contextlib.contextmanager
def unreadable(path: Path) -> Iterator[None]:
    """Make opening ``path`` fail with PermissionError, also when running as root
    (where ``chmod 0`` does not stop reads)."""
    if not os.access(path, os.R_OK):
        yield
        return
    real_open = builtins.open

    def deny(file: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, (str, os.PathLike)) and Path(file) == Path(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    builtins.open = deny
    try:
        yield
    finally:
        builtins.open = real_open


def guard_for(name: str, path: Path) -> contextlib.AbstractContextManager:
    """:func:`unreadable` for the corpus' unreadable-file case, else nothing."""
    return unreadable(path) if name == "an unreadable file" else contextlib.nullcontext()
