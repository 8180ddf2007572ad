"""Export the catalogue, a candidate mask cube and the manual labels.

Plain functions for the Python API (they take glue ``Data`` / ``Subset`` objects or
astropy Tables) and the same functions wrapped as glue data exporters, so they appear
in glue's "Export Data/Subsets" dialog (``glue.config.data_exporter``: an exporter is
``exporter(filename, data_or_subset, components=None)``).

- catalogue -> FITS table / VOTable / ECSV, with the component units (glue's own
  table exporters drop units);
- mask cube -> FITS image (int32 ``clump_id`` of the selected candidates, 0 elsewhere)
  with the cube's WCS header;
- labels -> ``clump_id,label`` CSV, as read by ``ssclump verify --labels``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from glue.core.component import ExtendedComponent
from glue.core.data import Data
from glue.core.subset import Subset

from ..core.atomic import write_atomic
from ..core.catalog import write_catalog
from ..core.cube import mask_header
from ..core.labels import LABEL_NONE, write_labels_csv
from .pairing import (
    CATALOG_META_KEYS,
    KEY,
    META_GLUE_ONLY,
    META_HEADER,
    META_PARAMS,
    META_ROLE,
    component_names,
    cube_data_for,
    meta_key,
)

__all__ = [
    "CATALOG_FORMATS",
    "catalog_table",
    "export_catalog",
    "export_labels_csv",
    "export_mask_cube",
    "labels_from",
    "mask_cube_hdu",
]

#: File extension -> astropy Table format.
CATALOG_FORMATS = {
    ".fits": "fits", ".fit": "fits", ".fts": "fits",
    ".xml": "votable", ".vot": "votable", ".votable": "votable",
    ".ecsv": "ascii.ecsv",
}

PathLike = str | os.PathLike


def _split(obj: Any) -> tuple[Data, np.ndarray | None]:
    """(dataset, row/voxel mask or None) of a Data or Subset."""
    if isinstance(obj, Subset):
        return obj.data, np.asarray(obj.to_mask(), dtype=bool)
    if isinstance(obj, Data):
        return obj, None
    raise TypeError(f"expected a glue Data or Subset, got {type(obj).__name__}")


def _is_cube(data: Data) -> bool:
    return data.ndim == 3


def catalog_table(obj: Data | Subset | Table,
                  components: Sequence[Any] | None = None) -> Table:
    """A catalogue dataset (or a subset of its rows) as an astropy Table with units.

    Parameters
    ----------
    obj : Data, Subset or Table
        The catalogue dataset, a subset of it (its rows only), or a Table (returned
        as a copy, restricted to ``components`` if given).
    components : sequence of ComponentID or str, optional
        Columns to keep (default: every non-coordinate component, derived ones
        included, except region geometries and the display-only columns named in
        ``meta['ssclump_glue_only']``).

    Returns
    -------
    astropy.table.Table
        Columns in component order, ``unit`` from the component units (unparseable
        units are kept as strings in the column ``description``).
    """
    wanted = None if components is None else {getattr(c, "label", c) for c in components}
    if isinstance(obj, Table):
        names = [n for n in obj.colnames if wanted is None or n in wanted]
        return obj[names].copy()
    data, mask = _split(obj)
    if _is_cube(data):
        raise ValueError(
            f"{data.label!r} is a cube; export its candidate catalogue (the 1D dataset) "
            "as a table, or the cube as a mask cube"
        )
    table = Table()
    # Display-only columns (a galaxy catalogue's y_up) are left out unless asked for.
    glue_only = set(str(data.meta.get(META_GLUE_ONLY, "")).split(",")) - {""}
    for cid in data.main_components + data.derived_components:
        if wanted is not None and cid.label not in wanted:
            continue
        if wanted is None and cid.label in glue_only:
            continue
        comp = data.get_component(cid)
        if isinstance(comp, ExtendedComponent):
            continue  # region geometries (a galaxy catalogue's boxes) are not table values
        if comp.categorical:
            values = np.asarray(comp.labels, dtype=str)
        else:
            values = np.asarray(data[cid])
        if mask is not None:
            values = values[mask]
        table[cid.label] = values
        if comp.units:
            try:
                table[cid.label].unit = u.Unit(comp.units)
            except ValueError:
                table[cid.label].description = f"unit: {comp.units}"
    table.meta.update(_catalog_meta(data))
    return table


def _catalog_meta(data: Data) -> dict[str, Any]:
    """The table meta of :func:`~glue_ssclump.core.catalog.build_catalog`, from Data.meta."""
    meta: dict[str, Any] = {}
    # META_DETECTOR and META_RMS are meta_key("detector") and meta_key("rms")
    for key in (*CATALOG_META_KEYS, "detector", "rms"):
        value = data.meta.get(meta_key(key))
        if isinstance(value, (str, int, float)):
            meta[key] = value
    params = data.meta.get(META_PARAMS)
    if isinstance(params, str):
        try:
            meta["params"] = json.loads(params)
        except ValueError:
            pass
    return meta


def export_catalog(obj: Data | Subset | Table, path: PathLike, format: str | None = None,
                   components: Sequence[Any] | None = None, overwrite: bool = True) -> Path:
    """Write a catalogue (or a subset of its rows) as FITS table, VOTable or ECSV.

    Parameters
    ----------
    obj : Data, Subset or Table
        See :func:`catalog_table`.
    path : str or path
        Output file.
    format : str, optional
        astropy format (``'fits'``, ``'votable'``, ``'ascii.ecsv'``); default from
        the extension (:data:`CATALOG_FORMATS`).
    components : sequence, optional
        Columns to write.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path
    """
    path = Path(path)
    if format is None:
        format = CATALOG_FORMATS.get(path.suffix.lower())
        if format is None:
            raise ValueError(
                f"cannot tell the table format from {path.name!r}; use .fits, .xml/.vot "
                "(VOTable) or .ecsv, or pass format="
            )
    table = catalog_table(obj, components)
    if format == "votable":
        # astropy writes no table metadata to VOTable; nested values would fail.
        table.meta = {}
    return write_catalog(table, path, fmt=format, overwrite=overwrite)


def _cube_header(cube_data: Data) -> fits.Header:
    text = cube_data.meta.get(META_HEADER)
    if isinstance(text, str) and text:
        return fits.Header.fromstring(text)
    if isinstance(cube_data.coords, WCS):
        return cube_data.coords.to_header()
    raise ValueError(f"dataset {cube_data.label!r} has no WCS to write into the mask header")


def mask_cube_hdu(obj: Data | Subset) -> fits.PrimaryHDU:
    """The mask cube of a selection: ``clump_id`` where selected, 0 elsewhere.

    Parameters
    ----------
    obj : Data or Subset
        * the cube dataset: every candidate;
        * a subset of the cube: the cube's ``clump_id`` inside the subset's voxels
          (a selection made in the catalogue covers exactly its candidates' voxels);
        * the catalogue dataset or a subset of its rows: those candidates, in the cube
          the catalogue is joined to.

    Returns
    -------
    astropy.io.fits.PrimaryHDU
        int32 data ``(v, y, x)`` with the cube's WCS header (no BUNIT).
    """
    data, subset = _split(obj)
    if _is_cube(data):
        cube_data = data
        if KEY not in component_names(cube_data):
            raise ValueError(f"cube {cube_data.label!r} has no {KEY!r} component; "
                             "detect candidates first")
        cube_mask = np.asarray(cube_data[KEY])
        out = cube_mask if subset is None else np.where(subset, cube_mask, 0)
    else:
        cube_data = cube_data_for(data)
        if cube_data is None:
            raise ValueError(
                f"{data.label!r} is not joined to a cube on {KEY!r}; export the mask from "
                "the cube dataset, or link the catalogue to its cube"
            )
        ids = np.asarray(data[KEY])
        if subset is not None:
            ids = ids[subset]
        cube_mask = np.asarray(cube_data[KEY])
        out = np.where(np.isin(cube_mask, ids), cube_mask, 0)
    header = mask_header(_cube_header(cube_data))
    header["COMMENT"] = "glue-ssclump candidate mask: clump_id of selected candidates, 0 = none"
    return fits.PrimaryHDU(data=np.asarray(out, dtype=np.int32), header=header)


def export_mask_cube(obj: Data | Subset, path: PathLike, overwrite: bool = True) -> Path:
    """Write :func:`mask_cube_hdu` of a selection to a FITS file.

    Parameters
    ----------
    obj : Data or Subset
        See :func:`mask_cube_hdu`.
    path : str or path
        Output FITS file.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)")
    hdu = mask_cube_hdu(obj)
    return write_atomic(path, lambda tmp: hdu.writeto(tmp))  # never a half-written mask


def labels_from(obj: Data | Subset | Table) -> dict[int, int]:
    """Manual labels ``{clump_id: code}`` (unlabelled rows left out).

    Parameters
    ----------
    obj : Data, Subset or Table
        The catalogue (or a subset of its rows) with ``clump_id`` and ``label``.
    """
    if isinstance(obj, Table):
        ids, codes = np.asarray(obj[KEY]), np.asarray(obj["label"])
    else:
        data, mask = _split(obj)
        if data.meta.get(META_ROLE) == "cube" or _is_cube(data):
            raise ValueError(f"{data.label!r} is a cube; export labels from its catalogue")
        if "label" not in component_names(data):
            raise ValueError(
                f"catalogue {data.label!r} has no 'label' component: no candidate has been "
                "labelled yet"
            )
        ids, codes = np.asarray(data[KEY]), np.asarray(data["label"])
        if mask is not None:
            ids, codes = ids[mask], codes[mask]
    keep = codes != LABEL_NONE
    return {int(i): int(c) for i, c in zip(ids[keep], codes[keep], strict=True)}


def export_labels_csv(obj: Data | Subset | Table, path: PathLike) -> Path:
    """Write the manual labels as the ``clump_id,label`` CSV of ``ssclump verify --labels``.

    Parameters
    ----------
    obj : Data, Subset or Table
        See :func:`labels_from`.
    path : str or path
        Output CSV (written atomically).

    Returns
    -------
    Path
    """
    return write_labels_csv(path, labels_from(obj))


# -- glue exporters ---------------------------------------------------------------------
# glue calls exporter(filename, data_or_subset, components=None).


def glue_export_fits_table(filename: str, data: Data | Subset,
                           components: Sequence[Any] | None = None) -> None:
    """glue exporter: candidate catalogue -> FITS table with units."""
    export_catalog(data, filename, format="fits", components=components)


def glue_export_votable(filename: str, data: Data | Subset,
                        components: Sequence[Any] | None = None) -> None:
    """glue exporter: candidate catalogue -> VOTable with units."""
    export_catalog(data, filename, format="votable", components=components)


def glue_export_ecsv(filename: str, data: Data | Subset,
                     components: Sequence[Any] | None = None) -> None:
    """glue exporter: candidate catalogue -> ECSV with units."""
    export_catalog(data, filename, format="ascii.ecsv", components=components)


def glue_export_mask_cube(filename: str, data: Data | Subset,
                          components: Sequence[Any] | None = None) -> None:
    """glue exporter: mask cube of the selected candidates (FITS, cube WCS)."""
    export_mask_cube(data, filename)


def glue_export_labels_csv(filename: str, data: Data | Subset,
                           components: Sequence[Any] | None = None) -> None:
    """glue exporter: manual labels -> ``clump_id,label`` CSV."""
    export_labels_csv(data, filename)


#: (label, function, extensions) of the exporters registered with glue.
GLUE_EXPORTERS = (
    ("Clump catalogue: FITS table with units (glue-ssclump)", glue_export_fits_table,
     ["fits", "fit"]),
    ("Clump catalogue: VOTable with units (glue-ssclump)", glue_export_votable,
     ["xml", "vot"]),
    ("Clump catalogue: ECSV with units (glue-ssclump)", glue_export_ecsv, ["ecsv"]),
    ("Candidate mask cube: FITS with cube WCS (glue-ssclump)", glue_export_mask_cube,
     ["fits"]),
    ("Manual labels: clump_id,label CSV (glue-ssclump)", glue_export_labels_csv, ["csv"]),
)
