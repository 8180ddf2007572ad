"""Links between a galaxy image and its clump catalogue (boxes shown, brushing both ways).

glue's image viewer draws a ``RegionData``'s regions when the region centres are linked
to what it displays (``ScatterRegionLayerArtist``): the image's world coordinates when
the image has a WCS, its pixel axes otherwise; and it requires the link to be the
identity (it compares the centres with the linked values). So the catalogue's centre
columns (``ra`` / ``dec``, ``x`` / ``y`` or ``x`` / ``y_up``, see
:mod:`glue_ssclump.integration.galaxy_factory`) are linked one-way, with
:func:`glue_ssclump.integration.links.copy_value`, to the image's coordinates.

Through these links:

* a region drawn on the image (a ``RoiSubsetState`` on its pixel axes) is evaluated on
  the catalogue, which computes the image pixel of each clump centre: it selects the
  rows of the clumps whose centre lies inside;
* a selection of catalogue rows (table viewer, verdict groups) is a subset of the
  ``RegionData``, which the image viewer draws as those clumps' boxes in the subset's
  colour.

One-way, as on the cube side: the image cannot compute catalogue columns, so a
selection on catalogue columns never turns into a slab of image pixels.
"""

from __future__ import annotations

from typing import Any

from astropy.wcs import WCS
from glue.core.component_link import ComponentLink
from glue.core.data import Data
from glue.core.data_collection import DataCollection

from .galaxy_factory import META_CENTRES, galaxy_pairs
from .links import copy_value, offer_links_once
from .pairing import META_LINKED

__all__ = ["GALAXY_AUTOLINKER_LABEL", "galaxy_links", "link_galaxy", "suggest_galaxy_links"]

#: Name of the auto-linker (glue Preferences > Autolinking lists it).
GALAXY_AUTOLINKER_LABEL = "glue-ssclump: galaxy image <-> clump boxes"


def _targets(image_data: Data) -> tuple[Any, Any]:
    """The image's (x, y) display coordinates: world (lon, lat) or pixel (x, y)."""
    wcs = image_data.coords
    if isinstance(wcs, WCS) and wcs.has_celestial:
        world = image_data.world_component_ids  # numpy order: FITS axis i at ndim - 1 - i
        n = image_data.ndim
        return world[n - 1 - wcs.wcs.lng], world[n - 1 - wcs.wcs.lat]
    pixel = image_data.pixel_component_ids
    return pixel[1], pixel[0]


def galaxy_links(image_data: Data, clump_data: Data) -> list[ComponentLink]:
    """The two one-way links of an (image, clump catalogue) pair (not added anywhere).

    Raises
    ------
    ValueError
        The catalogue does not say which columns are its region centres, or lacks them.
    """
    centres = str(clump_data.meta.get(META_CENTRES, "")).split(",")
    if len(centres) != 2:
        raise ValueError(f"{clump_data.label!r} is not a galaxy clump catalogue made by "
                         "glue-ssclump (no region centres in its meta)")
    links = []
    for name, target in zip(centres, _targets(image_data), strict=True):
        source = next((c for c in clump_data.main_components if c.label == name), None)
        if source is None:
            raise ValueError(f"{clump_data.label!r} has no {name!r} column to link")
        links.append(ComponentLink([source], target, using=copy_value,
                                   description=f"glue-ssclump: clump {name} -> image "
                                               f"{target.label}"))
    return links


def _present(link: ComponentLink, existing: list[Any]) -> bool:
    return any(isinstance(old, ComponentLink)
               and list(old.get_from_ids()) == list(link.get_from_ids())
               and old.get_to_id() is link.get_to_id() for old in existing)


def link_galaxy(data_collection: DataCollection, image_data: Data,
                clump_data: Data) -> list[ComponentLink]:
    """Add a pair's links to the data collection (idempotent); returns those added."""
    existing = list(data_collection.external_links)
    new = [link for link in galaxy_links(image_data, clump_data)
           if not _present(link, existing)]
    if new:
        data_collection.add_link(new)
    clump_data.meta[META_LINKED] = True
    return new


def suggest_galaxy_links(data_collection: DataCollection) -> list[ComponentLink]:
    """glue auto-linker: links for galaxy pairs not offered before.

    Runs after the data factory's datasets are added in the application. Each pair is
    offered once (``meta['ssclump_linked']``), so links removed in the link editor do
    not come back. It makes no subset groups: glue-qt makes every new group the edit
    subset, so the user's next region would replace a verdict group; the groups come
    with the first verdict or with :func:`glue_ssclump.qt.galaxy_viewer.show_galaxy`,
    which then clear the edit subset.
    """
    return offer_links_once(data_collection, GALAXY_AUTOLINKER_LABEL,
                            galaxy_pairs(data_collection), galaxy_links, _present)
