"""glue's image viewer set up for a galaxy image and its clump boxes.

:func:`show_galaxy` opens glue-qt's own :class:`~glue_qt.viewers.image.ImageViewer` on
the image dataset (its ``luminance`` in grey) and adds the clump catalogue, a
``RegionData`` the viewer draws as boxes (see
:mod:`glue_ssclump.integration.galaxy_links`). Boxes are drawn as outlines, not
filled, so the clump inside stays visible; subsets (the verdict groups, a table
selection) outline their boxes in their own colour.
"""

from __future__ import annotations

from typing import Any

from glue.core.data import Data

__all__ = ["outline_regions", "show_galaxy"]

#: Outline colour of every box (a subset's boxes are drawn over it in its colour).
BOX_COLOUR = "#bbbbbb"


#: Width of the box outlines (glue draws regions 1 px wide, hard to see on a galaxy).
BOX_WIDTH = 2.0


def outline_regions(viewer: Any) -> None:
    """Draw every region layer of an image viewer as outlines (no fill), 2 px wide."""
    from glue.viewers.scatter.state import ScatterRegionLayerState

    for state in viewer.state.layers:
        if isinstance(state, ScatterRegionLayerState) and state.fill:
            state.fill = False
    for artist in viewer.layers:
        # The width is no layer-state property; glue's artist never resets it.
        collection = getattr(artist, "region_collection", None)
        if collection is not None:
            collection.set_linewidth(BOX_WIDTH)


def show_galaxy(application: Any, image_data: Data, clump_data: Data | None) -> Any:
    """A glue image viewer showing the image with its clump boxes and verdict groups.

    The verdict groups are made if missing (a pair opened with the data factory has
    none yet), and glue-qt's hand-over of a new group as the edit subset is undone
    (:func:`~glue_ssclump.integration.selection.keep_edit_subset`), so a region drawn
    on the image makes a new subset rather than replacing, say, "Galaxy clumps:
    rejected".

    Parameters
    ----------
    application : GlueApplication
    image_data : Data
        The galaxy image dataset.
    clump_data : Data or None
        Its clump catalogue (linked, see
        :func:`~glue_ssclump.integration.galaxy_links.link_galaxy`); None shows the
        image alone (nothing detected).

    Returns
    -------
    glue_qt.viewers.image.ImageViewer
    """
    from glue.viewers.scatter.state import ScatterRegionLayerState
    from glue_qt.viewers.image import ImageViewer

    from ..integration.galaxy_verdicts import update_galaxy_subsets
    from ..integration.selection import keep_edit_subset

    viewer = application.new_data_viewer(ImageViewer, data=image_data)
    viewer.state.color_mode = "Colormaps"
    image_state = viewer.state.layers[0]
    image_state.cmap = _grey()
    image_state.percentile = 99.5
    if clump_data is None:
        return viewer
    with keep_edit_subset(application.data_collection):
        update_galaxy_subsets(application.data_collection, clump_data)
    viewer.add_data(clump_data)
    for state in viewer.state.layers:
        if isinstance(state, ScatterRegionLayerState) and state.layer is clump_data:
            state.color = BOX_COLOUR
            state.alpha = 0.9
    outline_regions(viewer)
    # Subset layers (verdict groups, selections) appear later: outline them too.
    viewer.state.add_callback("layers", lambda *args: outline_regions(viewer))
    return viewer


def _grey() -> Any:
    from matplotlib import colormaps

    return colormaps["gray"]
