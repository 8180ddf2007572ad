"""How a cube and its candidate catalogue are paired in glue, and how to recognise them.

One home for the join key, the ``Data.meta`` keys the pair carries, the component
lookup by name and the "is this a catalogue / a cube" checks that the factory, the
links, the write-back, the exporters and the Qt front ends all need. It imports
nothing else of this package, so any module can use it without an import cycle.
"""

from __future__ import annotations

from typing import Any

from glue.core.component_id import ComponentID
from glue.core.data import BaseData, Data

__all__ = [
    "CATALOG_META_KEYS",
    "CUBE_COMPONENT",
    "KEY",
    "META_CUBE",
    "META_DETECTOR",
    "META_GLUE_ONLY",
    "META_HEADER",
    "META_LINKED",
    "META_PARAMS",
    "META_RMS",
    "META_ROLE",
    "META_SOURCE",
    "catalog_data_for",
    "component",
    "component_names",
    "cube_data_for",
    "is_candidate_catalog",
    "is_catalog",
    "is_cube",
    "meta_key",
]

#: Candidate id: the mask component of the cube and the catalogue's key column.
KEY = "clump_id"
#: Component of the cube dataset holding the intensities.
CUBE_COMPONENT = "intensity"


def meta_key(name: str) -> str:
    """The ``Data.meta`` key under which glue-ssclump keeps ``name`` (a catalogue's table
    meta ``name`` among them)."""
    return f"ssclump_{name}"


# Data.meta keys (plain strings / numbers, so glue sessions save them).
META_ROLE = "ssclump_role"  # "cube" or "catalog"
META_CUBE = "ssclump_cube_uuid"  # catalogue: uuid of the cube dataset it describes
META_HEADER = "ssclump_header"  # cube: 3D FITS header (spectral km/s), for mask export
META_LINKED = "ssclump_linked"  # catalogue: links were added (or offered) once
META_DETECTOR = meta_key("detector")
META_RMS = meta_key("rms")
META_PARAMS = "ssclump_params"  # JSON
META_SOURCE = meta_key("source")  # the file the data were read from
META_GLUE_ONLY = "ssclump_glue_only"  # catalogue: comma-separated display-only columns
#: Table meta of a candidate catalogue kept in its ``Data.meta`` as :func:`meta_key`.
CATALOG_META_KEYS = ("frame", "lon_name", "lat_name", "spectral_type", "unit", "source")


def component_names(data: BaseData) -> list[str]:
    """Names of a dataset's own (main) components, in order."""
    return [cid.label for cid in data.main_components]


def component(data: BaseData, name: str) -> ComponentID | None:
    """A dataset's own component called ``name`` (``None`` if it has none).

    Only main components count: a linked (derived) component of the same name from
    another dataset is not this dataset's column.
    """
    for cid in data.main_components:
        if cid.label == name:
            return cid
    return None


def is_catalog(data: Any) -> bool:
    """A 1-D glue dataset with a ``clump_id`` column (one row per candidate)."""
    return isinstance(data, BaseData) and data.ndim == 1 and component(data, KEY) is not None


def is_cube(data: Any) -> bool:
    """A 3-D glue dataset with a ``clump_id`` mask component next to the intensity."""
    return (isinstance(data, BaseData) and data.ndim == 3 and component(data, KEY) is not None
            and len(data.main_components) >= 2)


def _joined(data: Data, ndim: int) -> Data | None:
    for other, (own, theirs) in getattr(data, "_key_joins", {}).items():
        if len(own) == 1 and len(theirs) == 1 and own[0].label == KEY \
                and theirs[0].label == KEY and other.ndim == ndim:
            return other
    return None


def cube_data_for(catalog_data: Data) -> Data | None:
    """The cube dataset a catalogue is joined to on ``clump_id`` (``None`` if none).

    Uses the catalogue's key joins (``Data.join_on_key`` / glue's ``JoinLink``), so it
    needs no data collection.
    """
    return _joined(catalog_data, 3)


def catalog_data_for(cube_data: Data) -> Data | None:
    """The catalogue dataset joined to a cube on ``clump_id`` (``None`` if none)."""
    return _joined(cube_data, 1)


def is_candidate_catalog(data: Any) -> bool:
    """A candidate catalogue that is joined to its cube."""
    return isinstance(data, Data) and is_catalog(data) and cube_data_for(data) is not None
