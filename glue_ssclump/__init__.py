"""glue-ssclump: find molecular clumps in PPV cubes and verify them with SS-3D-Clump.

The glue plugin entry point is :func:`setup`; everything it needs is imported lazily
inside it, so importing this package (for the CLI or the Python API) never pulls in
glue or Qt.
"""

from .version import __version__

__all__ = ["__version__", "setup"]


def setup() -> None:
    """Register glue-ssclump with glue (called by glue's plugin loader)."""
    from .integration.registration import register_all

    register_all()
