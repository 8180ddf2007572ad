"""The verification figure drawn fast, for the screen (the viewer's render thread).

A full matplotlib draw of the five panels spends most of its time in WCSAxes' tick
machinery and in laying out and rasterising text again for every candidate.
:class:`FastVerificationFigure` draws the same picture onto the same Agg canvas, but:
the parts that never change (white page, legend) are drawn once and restored as a
bitmap; the data artists (images, outlines, spectra) are drawn by matplotlib; frames
and ticks are plain paths; tick positions and labels come from astropy's own WCSAxes
formatter-locators (:mod:`.world_ticks`, so they read the same); and every string is
rasterised once and then copied as a bitmap (:class:`~.sprites.TextSprites`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from matplotlib import rcParams
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.path import Path
from matplotlib.transforms import IdentityTransform

from ..candidates import CandidateViews
from .geometry import CubeGeometry
from .sprites import TextSprites
from .verification import VerificationFigure
from .world_ticks import WorldTicks, simplify_labels

__all__ = ["FastVerificationFigure"]

_PT = 1.0 / 72.0  # inch per point
_TICK_PT = 3.5  # tick length, tick-label pad (matplotlib's defaults)
_LABELPAD_PT = 4.0
_TITLEPAD_PT = 4.0
_TICK_SIZE, _LABEL_SIZE, _TITLE_SIZE = 8.0, 9.0, 9.0
_EDGE_SAMPLES = 64  # points along a frame edge where the world coordinate is evaluated
_GRID_SAMPLES = 9  # per side, over a panel (the coordinate's range)


class FastVerificationFigure:
    """The verification figure, drawn fast onto an Agg canvas (the viewer's screen image).

    Same panels, artists and layout as :class:`VerificationFigure` (which it uses for
    the artists), but the map axes are plain matplotlib axes whose ticks and labels are
    computed here from the WCS with WCSAxes' formatter-locators, and each candidate is
    drawn by :meth:`draw` without a full ``figure.canvas.draw()``: constant parts come
    from a cached bitmap and all text from :class:`TextSprites`.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
        An empty figure with a ``FigureCanvasAgg``.
    """

    def __init__(self, figure: Figure) -> None:
        self.figure = figure
        self.artists = VerificationFigure(figure)
        self.geometry: CubeGeometry | None = None
        self.sprites = TextSprites()
        self._background: Any = None
        self._background_for: tuple | None = None
        self._world: list[tuple[WorldTicks, WorldTicks]] = []
        self._peak: tuple[int, int, int] = (0, 0, 0)

    def setup(self, geometry: CubeGeometry | None) -> None:
        """(Re)create the panels for a cube (see :meth:`VerificationFigure.setup`)."""
        self.geometry = geometry
        self._background_for = None
        self._world = []
        if geometry is None or geometry.wcs is None:
            self.artists.setup(geometry)
            return
        # The artists on plain axes; the world axes are drawn by draw().
        self.artists.setup(dataclasses.replace(geometry, wcs=None))
        vlabel = "v (km/s)" if geometry.velocity_unit == "km/s" else "channel"
        kinds = (("lon", "lat"), ("lon", "spec"), ("lat", "spec"))
        names = {"lon": geometry.lon_name, "lat": geometry.lat_name, "spec": vlabel}
        for panel, (xk, yk) in zip(self.artists.maps, kinds, strict=True):
            panel.ax.set_xlabel(names[xk])
            panel.ax.set_ylabel(names[yk])
            self._world.append((WorldTicks(geometry, xk), WorldTicks(geometry, yk)))

    def show(self, views: CandidateViews, v_peak: float | None = None,
             v_cen: float | None = None) -> None:
        """Update the artists for one candidate (see :meth:`VerificationFigure.show`)."""
        self.artists.show(views, v_peak, v_cen)
        self._peak = views.peak_xyz

    def draw(self) -> None:
        """Draw the figure into its Agg canvas (read it with ``canvas.buffer_rgba()``)."""
        fig = self.figure
        canvas = fig.canvas
        renderer = canvas.get_renderer()
        key = (renderer.width, renderer.height, renderer.dpi, id(self.geometry))
        if self.artists.geometry is None or not self.artists.maps:
            canvas.draw()
            return
        if self._background_for != key:
            self._draw_background(renderer)
            self._background_for = key
        canvas.restore_region(self._background)
        panels = [*self.artists.maps, *self.artists.spectra]
        self.artists.maps[0].ax.apply_aspect()
        for i, panel in enumerate(panels):
            ax = panel.ax
            children = [a for a in (*ax.images, *ax.lines, *ax.patches) if a.get_visible()]
            framed = False
            for artist in sorted(children, key=lambda a: a.get_zorder()):
                # Between the images / shading and the lines, as in the WCSAxes figure
                # (outlines along the cut-out's edge stay visible).
                if not framed and artist.get_zorder() >= 2:
                    self._draw_frame(renderer, ax)
                    framed = True
                if isinstance(artist, AxesImage):
                    self._draw_map(renderer, ax, artist)
                else:
                    artist.draw(renderer)
            if not framed:
                self._draw_frame(renderer, ax)
            world = self._world[i] if i < len(self._world) else None
            self._draw_axes_text(renderer, ax, world, i)

    # -- pieces ----------------------------------------------------------------------

    def _draw_background(self, renderer: RendererAgg) -> None:
        """Everything that is the same for every candidate: the page and the legend."""
        axes = [p.ax for p in (*self.artists.maps, *self.artists.spectra)]
        for ax in axes:
            ax.set_visible(False)
        try:
            self.figure.canvas.draw()
        finally:
            for ax in axes:
                ax.set_visible(True)
        self._background = self.figure.canvas.copy_from_bbox(self.figure.bbox)

    @staticmethod
    def _draw_map(renderer: RendererAgg, ax: Any, image: AxesImage) -> None:
        """A map filling its axes, pixels replicated (what imshow's 'nearest' shows).

        The maps' limits are their extents, so the image covers the axes box; picking
        screen pixels from the colour-mapped map with index arrays costs a fraction of
        matplotlib's general resampling.
        """
        data = image.get_array()
        if data is None or data.ndim != 2 or 0 in data.shape:
            return
        rgba = image.get_cmap()(image.norm(data), bytes=True)
        x0, y0, x1, y1 = ax.bbox.extents
        left, bottom = round(x0), round(y0)
        width, height = max(round(x1) - left, 1), max(round(y1) - bottom, 1)
        ny, nx = data.shape
        # pixel centres -> map cells; row 0 of the map is at the bottom (origin='lower'),
        # which is the row order draw_image wants
        cols = np.minimum(((np.arange(width) + 0.5) * (nx / width)).astype(np.intp), nx - 1)
        rows = np.minimum(((np.arange(height) + 0.5) * (ny / height)).astype(np.intp), ny - 1)
        if ax.xaxis_inverted():
            cols = cols[::-1]
        if ax.yaxis_inverted():
            rows = rows[::-1]
        gc = renderer.new_gc()
        renderer.draw_image(gc, left, bottom, np.ascontiguousarray(rgba[rows][:, cols]))
        gc.restore()

    @staticmethod
    def _draw_frame(renderer: RendererAgg, ax: Any) -> None:
        x0, y0, x1, y1 = ax.bbox.extents
        gc = renderer.new_gc()
        gc.set_linewidth(rcParams["axes.linewidth"])
        gc.set_foreground(rcParams["axes.edgecolor"])
        gc.set_snap(True)
        gc.set_joinstyle("miter")
        path = Path([(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)], closed=True)
        renderer.draw_path(gc, path, IdentityTransform())
        gc.restore()

    def _ticks(self, ax: Any, world: tuple[WorldTicks, WorldTicks] | None, panel: int
               ) -> tuple[tuple[np.ndarray, list[str]], tuple[np.ndarray, list[str]]]:
        """Tick positions (data coordinates) and labels of the bottom and left edges."""
        (xa, xb), (ya, yb) = ax.get_xlim(), ax.get_ylim()
        if world is None:  # spectra and pixel maps: matplotlib's locators and formatters
            out = []
            for axis, (a, b) in ((ax.xaxis, (xa, xb)), (ax.yaxis, (ya, yb))):
                lo, hi = min(a, b), max(a, b)
                tol = 1e-9 * (hi - lo)
                values = [v for v in axis.get_major_locator()() if lo - tol <= v <= hi + tol]
                labels = axis.get_major_formatter().format_ticks(values)
                out.append((np.asarray(values, dtype=float), list(labels)))
            return out[0], out[1]
        geo = self.geometry
        assert geo is not None and geo.wcs is not None
        px, py, pz = self._peak
        tx = np.linspace(xa, xb, _EDGE_SAMPLES)
        ty = np.linspace(ya, yb, _EDGE_SAMPLES)
        const = np.full(_EDGE_SAMPLES, 1.0)
        # Pixel (x, y, z) along the bottom and the left edge; the coordinate that the
        # map sums over is taken at the candidate's peak.
        if panel == 0:
            bottom, left = (tx, ya * const, pz * const), (xa * const, ty, pz * const)
        elif panel == 1:
            bottom, left = (tx, py * const, ya * const), (xa * const, py * const, ty)
        else:
            bottom, left = (px * const, tx, ya * const), (px * const, xa * const, ty)
        gx, gy = (g.ravel() for g in np.meshgrid(np.linspace(xa, xb, _GRID_SAMPLES),
                                                  np.linspace(ya, yb, _GRID_SAMPLES)))
        gc = np.ones_like(gx)
        if panel == 0:
            grid = (gx, gy, pz * gc)
        elif panel == 1:
            grid = (gx, py * gc, gy)
        else:
            grid = (px * gc, gx, gy)
        xt = world[0].locate(geo.wcs, np.asarray(bottom), tx, np.asarray(grid))
        yt = world[1].locate(geo.wcs, np.asarray(left), ty, np.asarray(grid))
        # WCSAxes orders labels along the frame (left to right; top to bottom) before
        # dropping repeated fields.
        xl = simplify_labels(xt[1])
        yl = simplify_labels(yt[1][::-1])[::-1]
        return (xt[0], xl), (yt[0], yl)

    def _draw_axes_text(self, renderer: RendererAgg, ax: Any,
                        world: tuple[WorldTicks, WorldTicks] | None, panel: int) -> None:
        dpi = renderer.dpi
        pt = dpi * _PT
        tick, pad = _TICK_PT * pt, _TICK_PT * pt
        (xv, xl), (yv, yl) = self._ticks(ax, world, panel)
        x0, y0, x1, y1 = ax.bbox.extents
        trans = ax.transData
        segments = []
        xs = trans.transform(np.column_stack([xv, np.full(xv.size, ax.get_ylim()[0])]))[:, 0]
        ys = trans.transform(np.column_stack([np.full(yv.size, ax.get_xlim()[0]), yv]))[:, 1]
        for x in xs:
            segments.append([(x, y0), (x, y0 - tick)])
        for y in ys:
            segments.append([(x0, y), (x0 - tick, y)])
        if segments:
            verts = np.asarray(segments, dtype=float).reshape(-1, 2)
            codes = np.tile([Path.MOVETO, Path.LINETO], len(segments))
            gc = renderer.new_gc()
            gc.set_linewidth(rcParams["xtick.major.width"])
            gc.set_foreground(rcParams["xtick.color"])
            gc.set_snap(True)
            renderer.draw_path(gc, Path(verts, codes), IdentityTransform())
            gc.restore()
        sp = self.sprites
        bottom = y0 - tick - pad
        for x, label in zip(xs, xl, strict=True):
            box = sp.draw(renderer, label, x, y0 - tick - pad, size=_TICK_SIZE, va="top")
            bottom = min(bottom, box[1])
        left = x0 - tick - pad
        for y, label in zip(ys, yl, strict=True):
            box = sp.draw(renderer, label, x0 - tick - pad, y, size=_TICK_SIZE, ha="right")
            left = min(left, box[0])
        labelpad = _LABELPAD_PT * pt
        sp.draw(renderer, ax.xaxis.label.get_text(), 0.5 * (x0 + x1), bottom - labelpad,
                size=_LABEL_SIZE, va="top")
        sp.draw(renderer, ax.yaxis.label.get_text(), left - labelpad, 0.5 * (y0 + y1),
                size=_LABEL_SIZE, rotation=90, ha="right")
        sp.draw(renderer, ax.title.get_text(), 0.5 * (x0 + x1), y1 + _TITLEPAD_PT * pt,
                size=_TITLE_SIZE, va="baseline")
