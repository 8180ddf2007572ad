"""glue-ssclump: find molecular clumps in PPV cubes and verify them with SS-3D-Clump.

The glue plugin entry point is :func:`setup`; everything it needs is imported lazily
inside it, so importing this package (for the CLI or the Python API) never pulls in
glue or Qt.
"""

from .version import __version__

__all__ = ["__version__", "setup"]


def setup() -> None:
    """Register glue-ssclump with glue (called by glue's plugin loader).

    The glue-core pieces (data factory, links, exporters) always register; the Qt
    viewer and menu dialogs only where glue-qt is installed (glue-core alone, e.g. in
    a notebook, has no use for them).
    """
    from importlib.util import find_spec

    from .integration.registration import register_all

    register_all()
    if find_spec("glue_qt") is None:
        return
    from .qt import register_qt

    register_qt()
