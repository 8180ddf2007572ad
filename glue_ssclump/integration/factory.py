"""Cube + candidate catalogue as glue ``Data``: the data factory and ``detect_in_data``.

Two routes produce the same pair of datasets:

* the data factory :func:`load_ppv_candidates`, registered with glue as
  ``"PPV cube + clump candidates (glue-ssclump)"``: it reads a FITS cube, detects
  candidates (default: ClumpFind with the paper's settings at the estimated rms) and
  returns ``[cube, catalogue]``;
* :func:`detect_in_data` for a cube that is already in the data collection (opened
  with glue's own FITS loader, say): it adds a ``clump_id`` component to that cube and
  a catalogue dataset to the collection.

The cube dataset holds ``intensity`` (the cube, K) and ``clump_id`` (int32, 0 = no
candidate) on one grid with the cube's WCS, so both share world coordinates and
slicing. The catalogue dataset has one row per candidate with the columns of
:func:`glue_ssclump.core.catalog.build_catalog`, units kept as component units.

The factory's identifier never claims a file: glue's automatic choice keeps opening a
plain FITS cube as a plain cube, and detection only runs when the user picks this
factory explicitly (File > Open Data, file type menu) or calls
``load_data(path, factory=load_ppv_candidates)``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from glue.core.component import CategoricalComponent, Component
from glue.core.data import Data
from glue.core.data_collection import DataCollection
from glue.core.data_factories.helpers import data_label

from ..core.catalog import CatalogError
from ..core.cube import CubeError, PPVCube, cube_from_array, read_cube
from ..core.detectors import DetectorError, available_detectors
from ..core.detectors.registry import PLUGIN_ERRORS
from ..core.pipeline import detect
from ..core.progress import Progress, ensure_progress
from .links import catalogs_of, link_candidates
from .pairing import (
    CATALOG_META_KEYS,
    CUBE_COMPONENT,
    KEY,
    META_CUBE,
    META_DETECTOR,
    META_HEADER,
    META_PARAMS,
    META_RMS,
    META_ROLE,
    META_SOURCE,
    catalog_data_for,
    cube_data_for,
    meta_key,
)

__all__ = [
    "CUBE_COMPONENT",
    "DEFAULT_METHOD",
    "FACTORY_LABEL",
    "KEY",
    "attach_candidates",
    "catalog_data_for",
    "compute_candidates",
    "cube_data_for",
    "detect_in_data",
    "is_ppv_candidates_file",
    "load_ppv_candidates",
    "make_catalog_data",
    "make_cube_data",
    "ppv_cube_from_data",
    "use_progress",
]

#: Label of the data factory in glue's "Open Data" file-type menu.
FACTORY_LABEL = "PPV cube + clump candidates (glue-ssclump)"
#: Detector the factory runs unless told otherwise (the paper's ClumpFind settings).
DEFAULT_METHOD = "clumpfind"
_PROGRESS: ContextVar[Progress | None] = ContextVar("glue_ssclump_factory_progress", default=None)


@contextmanager
def use_progress(progress: Progress | None) -> Iterator[None]:
    """Report (and allow cancelling) a factory run made inside this block.

    glue calls data factories as ``factory(path, **kwargs)`` and saves ``kwargs`` in
    session files, so a :class:`Progress` cannot travel as an argument. A front end
    that runs ``load_data(path, factory=load_ppv_candidates)`` in a worker thread
    wraps the call in ``with use_progress(progress):`` (the setting is per thread /
    context).

    Parameters
    ----------
    progress : Progress or None
        Receives detection and catalogue progress; ``progress.cancel()`` stops the run
        with :class:`~glue_ssclump.core.progress.Cancelled`.
    """
    token = _PROGRESS.set(progress)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


def is_ppv_candidates_file(filename: str, **kwargs: Any) -> bool:
    """Identifier of the factory: always ``False``.

    Detection is slow and changes what a plain ``Open Data`` gives, so this factory
    never volunteers; glue's FITS loader keeps opening cubes unless the user chooses
    this factory explicitly.
    """
    return False


# -- building Data ------------------------------------------------------------------


def make_cube_data(cube: PPVCube, mask: np.ndarray | None, label: str) -> Data:
    """The cube as one glue ``Data``: ``intensity`` (+ ``clump_id``) on the cube's WCS.

    Parameters
    ----------
    cube : PPVCube
        The cube (``data`` in K unless ``cube.unit`` says otherwise).
    mask : ndarray or None
        int mask of ``cube.shape`` (0 = no candidate); ``None`` adds no
        ``clump_id`` component.
    label : str
        Dataset label.

    Returns
    -------
    glue.core.data.Data
    """
    data = Data(label=label, coords=cube.wcs)
    data.add_component(Component(cube.data, units=cube.unit), CUBE_COMPONENT)
    if mask is not None:
        data.add_component(Component(_as_mask(mask, cube.shape)), KEY)
    data.meta[META_ROLE] = "cube"
    data.meta[META_HEADER] = cube.header.tostring()
    if cube.source:
        data.meta[META_SOURCE] = str(cube.source)
    return data


def make_catalog_data(table: Table, label: str) -> Data:
    """A candidate catalogue (astropy Table) as a 1D glue ``Data``.

    Numeric and boolean columns become :class:`~glue.core.component.Component` with the
    column unit as ``units``; string columns become categorical components;
    multi-dimensional columns are split into ``name_0``, ``name_1``, ...

    Parameters
    ----------
    table : astropy.table.Table
        One row per candidate, with a ``clump_id`` column.
    label : str
        Dataset label.

    Returns
    -------
    glue.core.data.Data
    """
    if KEY not in table.colnames:
        raise CatalogError(f"the catalogue has no {KEY!r} column (columns: {table.colnames[:8]});"
                           " give the catalogue written with the mask (ssclump detect)")
    data = Data(label=label)
    for name in table.colnames:
        col = table[name]
        unit = None if getattr(col, "unit", None) is None else col.unit.to_string()
        values = _column_values(col)
        if values.ndim == 1:
            data.add_component(_component(values, unit), name)
        else:
            flat = values.reshape(len(table), -1)
            for j in range(flat.shape[1]):
                data.add_component(_component(flat[:, j], unit), f"{name}_{j}")
    data.meta[META_ROLE] = "catalog"
    for key in CATALOG_META_KEYS:
        value = table.meta.get(key)
        if isinstance(value, (str, int, float)):
            data.meta[meta_key(key)] = value
    if "detector" in table.meta:
        data.meta[META_DETECTOR] = str(table.meta["detector"])
    if "rms" in table.meta:
        data.meta[META_RMS] = float(table.meta["rms"])
    if "params" in table.meta:
        data.meta[META_PARAMS] = json.dumps(table.meta["params"], default=str)
    return data


def _column_values(col: Any) -> np.ndarray:
    if np.ma.isMaskedArray(col) or getattr(col, "mask", None) is not None:
        kind = np.asarray(col).dtype.kind
        fill: Any = np.nan if kind == "f" else ("" if kind in "US" else 0)
        col = col.filled(fill)
    return np.asarray(col)


def _component(values: np.ndarray, unit: str | None) -> Component:
    if values.dtype.kind in "USO":
        return CategoricalComponent(values.astype(str), units=unit)
    return Component(values, units=unit)


def _as_mask(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.shape != tuple(shape):
        raise CatalogError(f"mask shape {mask.shape} does not match the cube {shape}; "
                           "pass the mask detected in this cube")
    if not np.issubdtype(mask.dtype, np.integer):
        raise CatalogError(f"mask must be integer, got {mask.dtype}; pass the int "
                           "mask of candidate ids (0 = background)")
    return mask.astype(np.int32, copy=False)


def _check_keywords(method: Any, params: Any, rms: Any) -> None:
    """The factory's keywords, which glue restores from (editable) session files."""
    if not isinstance(method, str):
        raise DetectorError(f"the detector name must be text, got {method!r}; use one of "
                            f"{', '.join(sorted(available_detectors()))}")
    _check_method(method)
    if params is not None and not isinstance(params, Mapping):
        raise DetectorError(f"detector parameters must be a mapping of name to value, got "
                            f"{params!r}; e.g. {{'Tlow': '3rms'}}")
    if rms is not None and (isinstance(rms, bool) or not isinstance(rms, (int, float))
                            or not np.isfinite(rms) or rms <= 0):
        raise DetectorError(f"rms must be a positive number of K, got {rms!r}; leave it out "
                            "to estimate the noise from the cube")


def _check_method(method: str) -> None:
    known = available_detectors()
    if method.lower() in known:
        return
    why = PLUGIN_ERRORS.get(method.lower())
    reason = f" (its plugin failed to load: {why})" if why else ""
    raise DetectorError(
        f"the {method!r} detector is not available{reason}; installed detectors: "
        f"{', '.join(sorted(known)) or 'none'}. Reinstall glue-ssclump, or open the cube "
        "with glue's 'FITS file' loader and run 'Detect clump candidates' with one of the "
        "installed detectors"
    )


def _tag_pair(cube_data: Data, catalog_data: Data, detector: str, rms: float,
              params: Mapping[str, Any]) -> None:
    catalog_data.meta[META_CUBE] = cube_data.uuid
    for d in (cube_data, catalog_data):
        d.meta[META_DETECTOR] = detector
        d.meta[META_RMS] = float(rms)
        d.meta[META_PARAMS] = json.dumps(dict(params), default=str)


# -- the data factory -----------------------------------------------------------------


def load_ppv_candidates(
    filename: str,
    method: str = DEFAULT_METHOD,
    params: Mapping[str, Any] | None = None,
    rms: float | None = None,
) -> list[Data]:
    """Data factory: read a PPV cube, detect candidates, return ``[cube, catalogue]``.

    Registered with glue as ``"PPV cube + clump candidates (glue-ssclump)"``. The two
    datasets are joined on ``clump_id`` (``Data.join_on_key``) so subsets propagate
    between them; the collection-level links (shown in the link editor) are added by
    :func:`glue_ssclump.integration.links.link_candidates`, which glue runs through the
    registered auto-linker when the datasets are added in the application.

    Parameters
    ----------
    filename : str
        A FITS PPV cube (see :func:`glue_ssclump.core.cube.read_cube`).
    method : str
        Detector name; default ``'clumpfind'`` with its defaults (the paper's settings).
    params : mapping, optional
        Detector parameter overrides (numbers in K or strings like ``'3rms'``).
        Must be JSON-serialisable: glue saves factory keywords in session files.
    rms : float, optional
        Noise rms in K; default :func:`~glue_ssclump.core.cube.estimate_rms`.

    Returns
    -------
    list of glue.core.data.Data
        ``[cube, catalogue]``; a session saved without data re-runs this function
        with the same keywords (detection is deterministic).

    Raises
    ------
    CubeError
        The file is not a usable PPV cube (message says how to fix it).
    DetectorError
        ``method`` is not an installed detector, or a parameter is invalid.
    """
    progress = ensure_progress(_PROGRESS.get())
    _check_keywords(method, params, rms)
    cube = read_cube(filename)
    mask, table = compute_candidates(cube, method, params, rms, progress)
    return list(make_candidate_pair(cube, mask, table, data_label(filename)))


def make_candidate_pair(cube: PPVCube, mask: np.ndarray, table: Table,
                        name: str) -> tuple[Data, Data]:
    """The cube dataset (intensity + ``clump_id``) and its catalogue, joined.

    Parameters
    ----------
    cube : PPVCube
    mask : ndarray
        The mask.
    table : astropy.table.Table
        The catalogue (``meta`` holds detector, rms and parameters).
    name : str
        Label of the cube dataset; the catalogue is "NAME candidates (DETECTOR)".

    Returns
    -------
    (Data, Data)
        Cube and catalogue, joined on ``clump_id``.
    """
    cube_data = make_cube_data(cube, mask, name)
    catalog_data = make_catalog_data(table, f"{name} candidates ({table.meta['detector']})")
    _tag_pair(cube_data, catalog_data, table.meta["detector"], table.meta["rms"],
              table.meta.get("params", {}))
    cube_data.join_on_key(catalog_data, KEY, KEY)
    return cube_data, catalog_data


# -- detection on a cube already in glue --------------------------------------------------


def ppv_cube_from_data(cube_data: Data, component: str | None = None) -> PPVCube:
    """Rebuild a :class:`PPVCube` (K, km/s) from a 3D glue dataset with a WCS.

    Parameters
    ----------
    cube_data : Data
        A 3D dataset whose ``coords`` is a celestial + spectral WCS (glue's FITS loader
        and :func:`load_ppv_candidates` both give one).
    component : str, optional
        Component with the intensities; default ``intensity`` if present, else the
        first numeric non-coordinate component.

    Returns
    -------
    PPVCube

    Raises
    ------
    CubeError
        No WCS, wrong dimensionality, or a WCS that is not position-position-velocity.
    """
    if cube_data.ndim != 3:
        raise CubeError(
            f"dataset {cube_data.label!r} has {cube_data.ndim} dimensions; choose a 3D "
            "position-position-velocity cube"
        )
    cid = _intensity_cid(cube_data, component)
    values = np.asarray(cube_data.get_data(cid))
    header_text = cube_data.meta.get(META_HEADER)
    if isinstance(header_text, str) and header_text:
        header = fits.Header.fromstring(header_text)
    elif isinstance(cube_data.coords, WCS):
        header = cube_data.coords.to_header()
        units = cube_data.get_component(cid).units
        if units:
            header["BUNIT"] = str(units)
    else:
        raise CubeError(
            f"dataset {cube_data.label!r} has no celestial/spectral WCS; open the cube "
            "with glue's FITS loader (which keeps the header's WCS)"
        )
    for i, n in enumerate(values.shape[::-1], start=1):
        header[f"NAXIS{i}"] = n
    source = cube_data.meta.get(META_SOURCE)
    return cube_from_array(values, header, source=source if isinstance(source, str) else None)


def _intensity_cid(cube_data: Data, component: str | None) -> Any:
    if component is not None:
        return cube_data.id[component]
    names = [c.label for c in cube_data.main_components]
    if CUBE_COMPONENT in names:
        return cube_data.id[CUBE_COMPONENT]
    for cid in cube_data.main_components:
        if cid.label != KEY and cube_data.get_kind(cid) == "numerical":
            return cid
    raise CubeError(f"dataset {cube_data.label!r} has no numeric component to detect on")


def compute_candidates(
    cube: PPVCube | Data,
    method: str,
    params: Mapping[str, Any] | None = None,
    rms: float | None = None,
    progress: Progress | None = None,
) -> tuple[np.ndarray, Table]:
    """Detect candidates and build their catalogue; touches no glue state.

    Safe to run in a worker thread; pass the result to :func:`attach_candidates` on
    the GUI thread.

    Parameters
    ----------
    cube : PPVCube or Data
        The cube (a glue dataset is converted with :func:`ppv_cube_from_data`).
    method : str
        Detector name.
    params : mapping, optional
        Detector parameter overrides.
    rms : float, optional
        Noise rms in K; default :func:`~glue_ssclump.core.cube.estimate_rms`.
    progress : Progress, optional
        Progress / cancellation (see :func:`glue_ssclump.core.pipeline.detect`).

    Returns
    -------
    mask : ndarray
        int32 mask of the cube's shape.
    table : astropy.table.Table
        The catalogue (:func:`~glue_ssclump.core.catalog.build_catalog`).
    """
    _check_method(method)
    if isinstance(cube, Data):
        cube = ppv_cube_from_data(cube)
    det = detect(cube, method, rms, params, progress=progress)
    return det.mask, det.catalog


def attach_candidates(
    data_collection: DataCollection,
    cube_data: Data,
    mask: np.ndarray,
    table: Table,
    label: str | None = None,
) -> Data:
    """Put a detection result into the session: ``clump_id`` on the cube, a catalogue.

    If the cube already has a ``clump_id`` component it is updated in place
    (``Data.update_components``); a catalogue made earlier for this cube is then
    updated in place too (``Data.update_values_from_data``: component ids, viewers and
    links stay, verdict columns of the old candidates are dropped). Otherwise a new
    catalogue dataset is added and linked (:func:`~.links.link_candidates`).

    Parameters
    ----------
    data_collection : DataCollection
        The session's data collection (must contain ``cube_data``).
    cube_data : Data
        The 3D cube dataset.
    mask : ndarray
        int mask of ``cube_data.shape``.
    table : astropy.table.Table
        Its catalogue.
    label : str, optional
        Label of a new catalogue dataset; default ``"<cube> candidates (<detector>)"``.

    Returns
    -------
    Data
        The catalogue dataset.
    """
    if cube_data not in data_collection:
        raise ValueError(f"dataset {cube_data.label!r} is not in this data collection")
    mask = _as_mask(mask, cube_data.shape)
    detector = str(table.meta.get("detector", "unknown"))
    label = label or f"{cube_data.label} candidates ({detector})"
    new_catalog = make_catalog_data(table, label)

    existing = [c.label for c in cube_data.main_components]
    if KEY in existing:
        cube_data.update_components({cube_data.id[KEY]: mask})
    else:
        cube_data.add_component(Component(mask), KEY)
    cube_data.meta.setdefault(META_ROLE, "cube")

    previous = catalogs_of(data_collection, cube_data)
    if previous:
        catalog_data = previous[0]
        catalog_data.update_values_from_data(new_catalog)
        for key, value in new_catalog.meta.items():
            catalog_data.meta[key] = value
    else:
        catalog_data = new_catalog
    _tag_pair(cube_data, catalog_data, detector, float(table.meta.get("rms", np.nan)),
              table.meta.get("params", {}))
    if not previous:
        data_collection.append(catalog_data)
    link_candidates(data_collection, cube_data, catalog_data)
    return catalog_data


def detect_in_data(
    data_collection: DataCollection,
    cube_data: Data,
    method: str,
    params: Mapping[str, Any] | None = None,
    rms: float | None = None,
    progress: Progress | None = None,
) -> Data:
    """Detect candidates in a cube already in the session (the "Detect…" action).

    Equivalent to :func:`compute_candidates` followed by :func:`attach_candidates`.

    Parameters
    ----------
    data_collection : DataCollection
        The session's data collection.
    cube_data : Data
        A 3D PPV cube dataset with a WCS.
    method : str
        Detector name (see :func:`~glue_ssclump.core.detectors.available_detectors`).
    params : mapping, optional
        Detector parameter overrides.
    rms : float, optional
        Noise rms in K; default estimated from the cube.
    progress : Progress, optional
        Progress / cancellation.

    Returns
    -------
    Data
        The catalogue dataset (in ``data_collection``, joined and linked to the cube).
    """
    mask, table = compute_candidates(cube_data, method, params, rms, progress)
    return attach_candidates(data_collection, cube_data, mask, table)
