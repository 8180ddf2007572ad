"""The project's one error base class.

Every problem with a user's input (a cube, a catalogue, a mask, a label file, a checkpoint,
a survey list, a galaxy image) raises a subclass of :class:`SSClumpError` whose message
names the problem and the fix. The CLI prints such a message on one line and exits 2; glue
shows it in a message box. Any other exception type escaping a reader is a bug.
"""

from __future__ import annotations

__all__ = ["SSClumpError"]


class SSClumpError(ValueError):
    """Bad input: the message says what is wrong and what to do about it."""
