"""Links between a cube dataset and its candidate catalogue.

Two kinds, both in the data collection's external links (so glue's link editor lists
them and can remove them, and sessions save them):

* a join on ``clump_id`` (:class:`glue.core.link_helpers.JoinLink`, "Join on ID" in
  the link editor; glue-core >= 1.17 keeps it as a link and applies it with
  ``Data.join_on_key``; removing it in the editor removes the join). Through it a
  selection of catalogue rows becomes exactly those candidates' voxels in the cube
  (``glue.core.joins.get_mask_with_key_joins``: ``np.isin(cube clump_id, selected
  ids)``) and a cube selection becomes the rows of the candidates it touches;
* one-way value links from the catalogue's ``peak_lon`` / ``peak_lat`` / ``peak_vel`` to
  the cube's world coordinates, so the catalogue can compute the cube's world and pixel
  coordinates and its points overlay in image and profile viewers of the cube.

Why one-way: glue evaluates a subset state directly on a dataset whenever it can
(``Data.get_mask`` tries ``subset_state.to_mask`` before the key joins). With two-way
(identity) links the cube could "compute" ``peak_vel`` from its own velocity axis, and a
catalogue selection such as ``peak_vel > 5`` would select a velocity slab of voxels
instead of the selected candidates. One-way links keep every catalogue selection on
the join. The converse cannot be avoided: the catalogue *can* compute the cube's
pixel coordinates (that is what makes the overlay possible), so a region drawn on the
cube in an image viewer reaches the catalogue by the positions of the peaks, not by
the join; :func:`glue_ssclump.integration.selection.select_candidates_in_region`
selects the candidates a region touches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import astropy.units as u
from astropy.wcs import WCS
from glue.core.component_id import ComponentID
from glue.core.component_link import ComponentLink
from glue.core.data import Data
from glue.core.data_collection import DataCollection
from glue.core.link_helpers import JoinLink

from .pairing import KEY, META_CUBE, META_LINKED, META_ROLE, component

log = logging.getLogger(__name__)

__all__ = [
    "AUTOLINKER_LABEL",
    "candidate_links",
    "catalogs_of",
    "copy_value",
    "find_candidate_pairs",
    "kms_to_ms",
    "link_candidates",
    "suggest_candidate_links",
]

#: Name of the auto-linker (glue Preferences > Autolinking lists it).
AUTOLINKER_LABEL = "glue-ssclump: cube <-> candidate catalogue"

_KMS = u.km / u.s


def copy_value(value: Any) -> Any:
    """One-way link function: the catalogue value is the cube's world coordinate."""
    return value


def kms_to_ms(kms: Any) -> Any:
    """One-way link function: km/s (catalogue) to m/s (glue's WCS spectral unit)."""
    return kms * 1000.0


def _world_cid(cube_data: Data, fits_axis: int) -> ComponentID:
    # world_component_ids are in numpy order; FITS axis i is numpy axis ndim - 1 - i.
    return cube_data.world_component_ids[cube_data.ndim - 1 - fits_axis]


def candidate_links(cube_data: Data, catalog_data: Data) -> list[Any]:
    """The links a cube / catalogue pair needs (not yet added anywhere).

    Parameters
    ----------
    cube_data : Data
        Cube dataset with a ``clump_id`` component and a celestial + spectral WCS.
    catalog_data : Data
        Catalogue dataset with ``clump_id`` and (optionally) ``peak_lon``,
        ``peak_lat`` [deg] and ``peak_vel`` [km/s].

    Returns
    -------
    list
        A :class:`~glue.core.link_helpers.JoinLink` on ``clump_id`` followed by the
        one-way :class:`~glue.core.component_link.ComponentLink` objects to the cube's
        world coordinates (skipped, with a log message, when units do not allow it).
    """
    cube_key, cat_key = component(cube_data, KEY), component(catalog_data, KEY)
    if cube_key is None or cat_key is None:
        raise ValueError(
            f"both datasets need a {KEY!r} component to be joined "
            f"({cube_data.label!r}, {catalog_data.label!r})"
        )
    links: list[Any] = [JoinLink(cids1=[cube_key], cids2=[cat_key],
                                 data1=cube_data, data2=catalog_data)]
    wcs = cube_data.coords
    if not isinstance(wcs, WCS) or not wcs.has_celestial or wcs.wcs.spec < 0:
        log.info("%s has no celestial + spectral WCS: no world-coordinate links",
                 cube_data.label)
        return links
    w = wcs.wcs
    targets = (("peak_lon", w.lng, u.deg), ("peak_lat", w.lat, u.deg),
               ("peak_vel", w.spec, _KMS))
    for column, axis, cat_unit in targets:
        source = component(catalog_data, column)
        if source is None:
            continue
        world = _world_cid(cube_data, axis)
        unit = cube_data.get_component(world).units or ""
        try:
            factor = cat_unit.to(u.Unit(unit))
        except (ValueError, u.UnitsError):
            log.warning("cannot link %s [%s] to %s [%s]", column, cat_unit, world.label, unit)
            continue
        if abs(factor - 1.0) < 1e-12:
            using = copy_value
        elif abs(factor - 1000.0) < 1e-9:
            using = kms_to_ms
        else:
            log.warning("cannot link %s [%s] to %s [%s]", column, cat_unit, world.label, unit)
            continue
        links.append(ComponentLink([source], world, using=using,
                                   description=f"glue-ssclump: catalogue {column} "
                                               f"-> cube {world.label}"))
    return links


def _same_link(a: Any, b: Any) -> bool:
    if isinstance(a, JoinLink) or isinstance(b, JoinLink):
        return a == b
    if isinstance(a, ComponentLink) and isinstance(b, ComponentLink):
        return (list(a.get_from_ids()) == list(b.get_from_ids())
                and a.get_to_id() is b.get_to_id()
                and a.get_using() is b.get_using())
    return False


def link_candidates(data_collection: DataCollection, cube_data: Data,
                    catalog_data: Data) -> list[Any]:
    """Add the join and world-coordinate links of a pair to the data collection.

    Idempotent: links already present are not added twice.

    Parameters
    ----------
    data_collection : DataCollection
        Contains both datasets.
    cube_data, catalog_data : Data
        The pair.

    Returns
    -------
    list
        The links that were added.
    """
    existing = list(data_collection.external_links)
    new = [link for link in candidate_links(cube_data, catalog_data)
           if not any(_same_link(link, old) for old in existing)]
    if new:
        data_collection.add_link(new)
    catalog_data.meta[META_LINKED] = True
    return new


def find_candidate_pairs(data_collection: DataCollection) -> list[tuple[Data, Data]]:
    """``(cube, catalogue)`` pairs made by glue-ssclump in a data collection."""
    by_uuid = {d.uuid: d for d in data_collection}
    pairs = []
    for data in data_collection:
        if data.meta.get(META_ROLE) != "catalog":
            continue
        cube = by_uuid.get(data.meta.get(META_CUBE))
        if cube is not None:
            pairs.append((cube, data))
    return pairs


def catalogs_of(data_collection: DataCollection, cube_data: Data) -> list[Data]:
    """The glue-ssclump catalogues of one cube in a data collection."""
    return [cat for cube, cat in find_candidate_pairs(data_collection) if cube is cube_data]


def suggest_candidate_links(data_collection: DataCollection) -> list[Any]:
    """glue auto-linker: links for cube / catalogue pairs not linked before.

    glue runs registered auto-linkers after datasets are added in the application and,
    depending on Preferences > Autolinking, applies the suggestions, shows them, or
    ignores them. glue-ssclump's default is to apply them (set here unless the user
    chose otherwise). Each pair is offered once (``meta['ssclump_linked']``), so links
    the user removes in the link editor do not come back.
    """
    return offer_links_once(data_collection, AUTOLINKER_LABEL,
                            find_candidate_pairs(data_collection), candidate_links,
                            lambda link, existing: any(_same_link(link, old)
                                                       for old in existing))


def offer_links_once(data_collection: DataCollection, label: str,
                     pairs: Iterable[tuple[Data, Data]],
                     make_links: Callable[[Data, Data], list[Any]],
                     present: Callable[[Any, list[Any]], bool]) -> list[Any]:
    """The body of glue-ssclump's auto-linkers: each pair's links, offered once.

    Sets the auto-linker ``label`` to apply its links unless the user chose otherwise
    in Preferences; skips pairs whose second dataset is marked ``META_LINKED`` and
    marks the rest; leaves out links already in the collection (``present``).  A pair
    whose links cannot be made (``ValueError``) is logged and skipped.

    Parameters
    ----------
    data_collection : DataCollection
    label : str
        The auto-linker's name in glue's settings.
    pairs : iterable of (Data, Data)
        The pairs to link; the second carries the ``META_LINKED`` mark.
    make_links : callable
        ``make_links(first, second)``: the pair's links.
    present : callable
        ``present(link, existing_links)``: True if the link is already there.

    Returns
    -------
    list
        The links to add.
    """
    from glue.config import settings

    if label not in settings.AUTOLINK:
        settings.AUTOLINK = {**settings.AUTOLINK, label: "always_accept"}
    links: list[Any] = []
    existing = list(data_collection.external_links)
    for first, second in pairs:
        if second.meta.get(META_LINKED):
            continue
        second.meta[META_LINKED] = True
        try:
            new = make_links(first, second)
        except ValueError as exc:
            log.warning("%s: %s", label, exc)
            continue
        links.extend(link for link in new if not present(link, existing))
    return links
