"""Qt front end (layer 3): the clump verification viewer for glue-qt.

:func:`register_viewer` adds :class:`~glue_ssclump.qt.viewer.VerificationViewer` to
glue-qt's ``qt_client`` registry (the "New data viewer" list); ``glue_ssclump:setup``
calls it. Importing this package does not import Qt; the viewer module is loaded by
:func:`register_viewer` or on first attribute access.
"""

from __future__ import annotations

from typing import Any

__all__ = ["VerificationViewer", "register_viewer"]


def register_viewer() -> type:
    """Register the verification viewer with glue-qt (idempotent).

    Returns
    -------
    type
        The registered viewer class.
    """
    from glue_qt.config import qt_client

    from .viewer import VerificationViewer

    if VerificationViewer not in qt_client.members:
        qt_client.add(VerificationViewer)
    return VerificationViewer


def __getattr__(name: str) -> Any:
    if name == "VerificationViewer":
        from .viewer import VerificationViewer

        return VerificationViewer
    raise AttributeError(name)


def register_qt() -> None:
    """Register every Qt piece: the verification viewer and the menubar dialogs."""
    from .menus import register_menubar_plugins

    register_viewer()
    register_menubar_plugins()
