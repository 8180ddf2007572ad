"""The verification figure: three integrated maps with WCS axes and two spectra.

The axes are created once per cube (:meth:`VerificationFigure.setup`); showing a
candidate only changes artists in place (``set_data``, ``set_extent``, limits), which
is what keeps stepping through tens of thousands of candidates fast. The class only
needs a matplotlib ``Figure`` (Qt canvas in the viewer, Agg in the benchmark).

:class:`FastVerificationFigure` draws the same picture for the screen (the render
thread) without a full matplotlib redraw; :class:`VerificationFigure` with WCSAxes
stays the figure that is saved.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import astropy.units as u
import numpy as np
from astropy.visualization.wcsaxes.formatter_locator import (
    AngleFormatterLocator,
    ScalarFormatterLocator,
)
from astropy.wcs import WCS
from matplotlib import rcParams
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.image import AxesImage
from matplotlib.patches import Rectangle
from matplotlib.path import Path
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import IdentityTransform, blended_transform_factory

from .candidates import CandidateViews, outline_segments

__all__ = ["CubeGeometry", "FastVerificationFigure", "TextSprites", "VerificationFigure",
           "cube_geometry"]

CMAP = "inferno"
OUTLINE = "#00e5ff"  # the candidate's mask
NEIGHBOUR = "#b0b0b0"  # other candidates inside the cut-out
PEAK_COLOR = "#d62728"
CENTROID_COLOR = "#1f77b4"
SHADE = "#ffbf00"

_KMS = u.km / u.s
_CELESTIAL_NAMES = {"RA": "RA", "DEC": "Dec", "GLON": "l", "GLAT": "b", "ELON": "λ",
                    "ELAT": "β", "SLON": "SGL", "SLAT": "SGB"}


@dataclass
class CubeGeometry:
    """What the figure needs to know about a cube's axes.

    Attributes
    ----------
    wcs : astropy.wcs.WCS or None
        3-axis WCS in FITS order (x, y, spectral); ``None`` draws pixel axes.
    shape : tuple of int
        ``(nv, ny, nx)``.
    velocity : ndarray
        Velocity (km/s) of every channel, or the channel index if unknown.
    velocity_unit : str
        ``'km/s'`` or ``'channel'``.
    lon_name, lat_name : str
        Short names of the celestial axes (``'RA'`` / ``'Dec'``, ``'l'`` / ``'b'``).
    intensity_unit : str
        Unit of the cube values (``'K'``).
    """

    wcs: WCS | None
    shape: tuple[int, int, int]
    velocity: np.ndarray
    velocity_unit: str
    lon_name: str
    lat_name: str
    intensity_unit: str

    @property
    def channel_width(self) -> float:
        """Median absolute channel spacing in velocity units (1 if a single channel)."""
        if self.velocity.size < 2:
            return 1.0
        return float(np.median(np.abs(np.diff(self.velocity))))


def cube_geometry(coords: object, shape: tuple[int, int, int],
                  intensity_unit: str = "K") -> CubeGeometry:
    """Axes description of a cube from its glue ``coords`` (an astropy WCS or ``None``).

    Parameters
    ----------
    coords : object
        The cube dataset's ``coords``; only a 3-axis celestial + spectral
        :class:`astropy.wcs.WCS` gives world axes.
    shape : tuple of int
        ``(nv, ny, nx)``.
    intensity_unit : str
        Unit of the values.

    Returns
    -------
    CubeGeometry
    """
    nz = shape[0]
    channels = np.arange(nz, dtype=float)
    if (isinstance(coords, WCS) and coords.naxis == 3 and coords.has_celestial
            and coords.wcs.spec >= 0):
        w = coords.wcs
        spec = coords.sub([w.spec + 1])
        values = np.asarray(spec.pixel_to_world_values(channels), dtype=float)
        try:
            velocity = (values * u.Unit(spec.wcs.cunit[0])).to_value(_KMS)
            vunit = "km/s"
        except (u.UnitsError, ValueError):
            velocity, vunit = channels, "channel"
        lon = _CELESTIAL_NAMES.get(w.ctype[w.lng][:4].rstrip("-"), "lon")
        lat = _CELESTIAL_NAMES.get(w.ctype[w.lat][:4].rstrip("-"), "lat")
        return CubeGeometry(coords, tuple(shape), velocity, vunit, lon, lat,  # type: ignore[arg-type]
                            intensity_unit)
    return CubeGeometry(None, tuple(shape), channels, "channel", "x", "y",  # type: ignore[arg-type]
                        intensity_unit)


class _MapPanel:
    """One integrated map: image, outline of the candidate, neighbours' outlines, peak."""

    def __init__(self, ax, xname: str, yname: str) -> None:
        self.ax = ax
        self.image = ax.imshow(np.zeros((2, 2)), origin="lower", cmap=CMAP,
                               interpolation="nearest", aspect="auto")
        (self.neighbours,) = ax.plot([], [], color=NEIGHBOUR, lw=0.8, ls=(0, (2, 2)))
        (self.outline,) = ax.plot([], [], color=OUTLINE, lw=1.4)
        (self.peak,) = ax.plot([], [], marker="+", ms=10, mew=1.6, color=PEAK_COLOR, ls="none")
        self.title = ax.set_title("", fontsize=9, pad=4)
        self.xname, self.yname = xname, yname
        # Limits are set explicitly per candidate; autoscaling would compute them twice.
        ax.set_autoscale_on(False)

    def show(self, image: np.ndarray, foot: np.ndarray, other: np.ndarray,
             x0: int, y0: int, peak: tuple[float, float]) -> None:
        ny, nx = image.shape
        extent = (x0 - 0.5, x0 + nx - 0.5, y0 - 0.5, y0 + ny - 0.5)
        self.image.set_data(image)
        self.image.set_extent(extent)
        finite = image[np.isfinite(image)]
        if finite.size:
            lo, hi = float(finite.min()), float(finite.max())
            if hi <= lo:
                hi = lo + 1.0
            self.image.set_clim(lo, hi)
        self.outline.set_data(*outline_segments(foot, x0, y0))
        self.neighbours.set_data(*outline_segments(other, x0, y0))
        self.peak.set_data([peak[0]], [peak[1]])
        self.ax.set_xlim(extent[0], extent[1])
        self.ax.set_ylim(extent[2], extent[3])


class _SpectrumPanel:
    """One spectrum with dashed peak / centroid velocities and the shaded range."""

    def __init__(self, ax, title: str, unit: str, vunit: str) -> None:
        self.ax = ax
        trans = blended_transform_factory(ax.transData, ax.transAxes)
        self.span = Rectangle((0, 0), 0, 1, transform=trans, color=SHADE, alpha=0.25, lw=0,
                              label="candidate's velocity range")
        ax.add_patch(self.span)
        (self.line,) = ax.plot([], [], color="k", lw=1.2, drawstyle="steps-mid")
        self.vpeak = ax.axvline(0, color=PEAK_COLOR, ls="--", lw=1.2, label="peak velocity")
        self.vcen = ax.axvline(0, color=CENTROID_COLOR, ls="--", lw=1.2,
                               label="centroid velocity")
        ax.axhline(0, color="0.6", lw=0.6, zorder=0)
        ax.set_autoscale_on(False)
        ax.set_title(title, fontsize=9, pad=4)
        ax.set_xlabel(f"velocity ({vunit})" if vunit != "channel" else "channel", fontsize=9)
        ax.set_ylabel(f"T ({unit})", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))

    def show(self, v: np.ndarray, spectrum: np.ndarray, v_lo: float, v_hi: float,
             v_peak: float, v_cen: float, half_channel: float) -> None:
        self.line.set_data(v, spectrum)
        self.span.set_x(min(v_lo, v_hi))
        self.span.set_width(abs(v_hi - v_lo))
        self.vpeak.set_xdata([v_peak, v_peak])
        self.vcen.set_xdata([v_cen, v_cen])
        lo, hi = float(np.min(v)) - half_channel, float(np.max(v)) + half_channel
        self.ax.set_xlim(lo, hi) if v[0] <= v[-1] else self.ax.set_xlim(hi, lo)
        finite = spectrum[np.isfinite(spectrum)]
        if finite.size:
            smin, smax = min(float(finite.min()), 0.0), float(finite.max())
            pad = 0.08 * (smax - smin if smax > smin else 1.0)
            self.ax.set_ylim(smin - pad, smax + pad)


class VerificationFigure:
    """The five panels of the verification view on a matplotlib figure.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
        An empty figure (the viewer's canvas figure).
    """

    def __init__(self, figure: Figure) -> None:
        self.figure = figure
        self.geometry: CubeGeometry | None = None
        self.maps: list[_MapPanel] = []
        self.spectra: list[_SpectrumPanel] = []
        self._message = None
        self.setup(None)

    # -- layout --------------------------------------------------------------------

    def setup(self, geometry: CubeGeometry | None) -> None:
        """(Re)create the axes for a cube; ``None`` leaves an empty figure with a message.

        Parameters
        ----------
        geometry : CubeGeometry or None
        """
        fig = self.figure
        fig.clear()
        self.geometry = geometry
        self.maps, self.spectra = [], []
        self._message = fig.text(0.5, 0.5, "", ha="center", va="center", fontsize=11,
                                 color="0.3", zorder=10)
        if geometry is None:
            return
        gs = fig.add_gridspec(2, 6, left=0.085, right=0.985, top=0.95, bottom=0.14,
                              wspace=1.05, hspace=0.42, height_ratios=[1.25, 1.0])
        nz, ny, nx = geometry.shape
        vname = ("v" if geometry.velocity_unit == "km/s" else "channel")
        if geometry.wcs is not None:
            yc, xc = (ny - 1) // 2, (nx - 1) // 2
            specs = [(("x", "y", 0), "lb"), (("x", yc, "y"), "lv"), ((xc, "x", "y"), "bv")]
            for col, (slices, kind) in enumerate(specs):
                ax = fig.add_subplot(gs[0, 2 * col:2 * col + 2], projection=geometry.wcs,
                                     slices=slices)
                self._style_wcs_axes(ax, kind, geometry)
                self.maps.append(_MapPanel(ax, kind[0], kind[1]))
        else:
            for col, (xl, yl) in enumerate((("x", "y"), ("x", "channel"), ("y", "channel"))):
                ax = fig.add_subplot(gs[0, 2 * col:2 * col + 2])
                ax.set_xlabel(f"{xl} (pix)", fontsize=9)
                ax.set_ylabel(yl if yl == "channel" else f"{yl} (pix)", fontsize=9)
                ax.tick_params(labelsize=8)
                self.maps.append(_MapPanel(ax, xl, yl))
        self.maps[0].ax.set_aspect("equal", adjustable="box")
        unit = geometry.intensity_unit or "K"
        vunit = geometry.velocity_unit
        self.spectra = [
            _SpectrumPanel(fig.add_subplot(gs[1, 0:3]), "peak spectrum", unit, vunit),
            _SpectrumPanel(fig.add_subplot(gs[1, 3:6]), "mean spectrum (footprint)",
                           unit, vunit),
        ]
        # Below the spectra, where it never hides a line.
        fig.legend(handles=[self.spectra[0].vpeak, self.spectra[0].vcen, self.spectra[0].span],
                   loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=3, fontsize=8,
                   frameon=False)
        self._vname = vname

    def _style_wcs_axes(self, ax, kind: str, geo: CubeGeometry) -> None:
        w = geo.wcs.wcs  # type: ignore[union-attr]
        lon, lat, spec = ax.coords[w.lng], ax.coords[w.lat], ax.coords[w.spec]
        equatorial = geo.lon_name == "RA"
        for c in (lon, lat, spec):
            c.set_ticklabel(size=8)
            c.set_ticks(number=4)
            c.display_minor_ticks(False)
        lon.set_major_formatter("hh:mm:ss" if equatorial else "d.dd")
        lat.set_major_formatter("dd:mm" if equatorial else "d.dd")
        if equatorial:
            # Unicode instead of WCSAxes' default mathtext superscripts: mathtext tick
            # labels cost ~10x more to render, and every candidate redraws them.
            lon.set_separator(("ʰ", "ᵐ", "ˢ"))
            lat.set_separator(("°", "′", "″"))
        spec.set_format_unit(_KMS)
        spec.set_major_formatter("x.x")
        vlabel = "v (km/s)" if geo.velocity_unit == "km/s" else "channel"
        if kind == "lb":
            xc, yc, hidden = lon, lat, spec
        elif kind == "lv":
            xc, yc, hidden = lon, spec, lat
        else:
            xc, yc, hidden = lat, spec, lon
        names = {id(lon): geo.lon_name, id(lat): geo.lat_name, id(spec): vlabel}
        # (An explicit set_axislabel_position makes WCSAxes ignore the tick labels'
        # extent and draw the label over them, so only ticks are placed here.)
        for c, side in ((xc, "b"), (yc, "l")):
            c.set_ticks_position(side)
            c.set_ticklabel_position(side)
            c.set_axislabel(names[id(c)], fontsize=9, minpad=0.8)
        # The axis fixed by the slice still has a world coordinate; hide it.
        hidden.set_ticks_position("")
        hidden.set_ticklabel_position("")
        hidden.set_axislabel_position("")

    # -- showing a candidate -------------------------------------------------------------

    def message(self, text: str) -> None:
        """Show ``text`` in the middle of the figure (and hide the panels if non-empty)."""
        if self._message is not None:
            self._message.set_text(text)
        for panel in [*self.maps, *self.spectra]:
            panel.ax.set_visible(not text)

    def show(self, views: CandidateViews, v_peak: float | None = None,
             v_cen: float | None = None) -> None:
        """Draw one candidate (artists updated in place; the caller redraws the canvas).

        Parameters
        ----------
        views : CandidateViews
            From :func:`~glue_ssclump.qt.candidates.candidate_views`.
        v_peak, v_cen : float, optional
            Peak and centroid velocities (km/s, catalogue); default: the peak channel's
            velocity and the intensity-weighted mean velocity of the mean spectrum.
        """
        geo = self.geometry
        if geo is None:
            return
        self.message("")
        z0, y0, x0 = (s.start for s in views.crop)
        px, py, pz = views.peak_xyz
        other = views.foot_other
        self.maps[0].show(views.map_lb, views.foot_lb, other[0], x0, y0, (px, py))
        self.maps[1].show(views.map_lv, views.foot_lv, other[1], x0, z0, (px, pz))
        self.maps[2].show(views.map_bv, views.foot_bv, other[2], y0, z0, (py, pz))
        dv = geo.channel_width if geo.velocity_unit == "km/s" else 1.0
        # Titles stay short: every glyph is rendered again for every candidate.
        unit = geo.intensity_unit or "K"
        iunit = f"{unit} km/s" if geo.velocity_unit == "km/s" else f"{unit} ch"
        self.maps[0].title.set_text(f"{geo.lon_name}–{geo.lat_name}: ∫T dv ({iunit})")
        self.maps[1].title.set_text(f"{geo.lon_name}–v: ΣT over {geo.lat_name} ({unit})")
        self.maps[2].title.set_text(f"{geo.lat_name}–v: ΣT over {geo.lon_name} ({unit})")
        v = geo.velocity[views.channels]
        z_lo, z_hi = views.z_range
        v_lo = _interp_velocity(geo.velocity, z_lo - 0.5)
        v_hi = _interp_velocity(geo.velocity, z_hi + 0.5)
        if v_peak is None or not np.isfinite(v_peak):
            v_peak = float(geo.velocity[pz])
        if v_cen is None or not np.isfinite(v_cen):
            w = np.clip(np.nan_to_num(views.mean_spectrum), 0, None)
            sel = (views.channels >= z_lo) & (views.channels <= z_hi)
            w = np.where(sel, w, 0)
            v_cen = float((w * v).sum() / w.sum()) if w.sum() > 0 else float(v_peak)
        for panel, spectrum in zip(self.spectra, (views.peak_spectrum, views.mean_spectrum),
                                   strict=True):
            panel.show(v, spectrum, v_lo, v_hi, float(v_peak), float(v_cen), 0.5 * dv)
        self.spectra[0].ax.set_title(f"peak spectrum (x={px}, y={py})", fontsize=9, pad=4)


def _interp_velocity(velocity: np.ndarray, z: float) -> float:
    """Velocity at a fractional channel (linear, extrapolated at the ends)."""
    n = velocity.size
    if n == 1:
        return float(velocity[0])
    i = int(np.clip(np.floor(z), 0, n - 2))
    return float(velocity[i] + (z - i) * (velocity[i + 1] - velocity[i]))


# -- the fast on-screen figure -------------------------------------------------------------
#
# A full matplotlib draw of the five panels costs about a hundred milliseconds of CPU,
# most of it in WCSAxes' tick machinery and in laying out and rasterising text again
# for every candidate. FastVerificationFigure draws the same picture onto the same Agg
# canvas, but: the parts that never change (white page, legend) are drawn once and
# restored as a bitmap; the data artists (images, outlines, spectra) are drawn by
# matplotlib; frames and ticks are plain paths; tick positions and labels come from
# astropy's own WCSAxes formatter-locators (so they read the same); and every string
# is rasterised once and then copied as a bitmap (TextSprites).

_PT = 1.0 / 72.0  # inch per point
_TICK_PT = 3.5  # tick length, tick-label pad (matplotlib's defaults)
_LABELPAD_PT = 4.0
_TITLEPAD_PT = 4.0
_TICK_SIZE, _LABEL_SIZE, _TITLE_SIZE = 8.0, 9.0, 9.0
_EDGE_SAMPLES = 64  # points along a frame edge where the world coordinate is evaluated
_GRID_SAMPLES = 9  # per side, over a panel (the coordinate's range)


class TextSprites:
    """Strings rasterised once by matplotlib's Agg text renderer, then copied as bitmaps.

    Labels repeat from candidate to candidate (``3.0``, ``30°36′``, titles), and
    copying a small RGBA bitmap costs a fraction of laying out and rasterising the
    glyphs again.

    Parameters
    ----------
    maxsize : int
        Number of bitmaps kept (least recently used ones are dropped).
    """

    _MARGIN = 2  # pixels of transparent border around the ink box

    def __init__(self, maxsize: int = 4096) -> None:
        self.maxsize = maxsize
        self._items: dict[tuple, tuple[np.ndarray, float, float, float]] = {}
        self._props: dict[float, FontProperties] = {}
        self._gc_renderer: RendererAgg | None = None

    def _sprite(self, text: str, size: float, color: str, rotation: int,
                dpi: float) -> tuple[np.ndarray, float, float, float]:
        key = (text, size, color, rotation, dpi)
        item = self._items.pop(key, None)
        if item is None:
            prop = self._props.get(size)
            if prop is None:
                prop = self._props[size] = FontProperties(size=size)
            m = self._MARGIN
            probe = RendererAgg(1, 1, dpi)
            w, h, d = probe.get_text_width_height_descent(text, prop, ismath=False)
            if rotation == 0:
                width, height = int(np.ceil(w)) + 2 * m, int(np.ceil(h)) + 2 * m
                x, y = m, height - m - d
            else:  # 90: the baseline runs upwards, the ascenders point left
                width, height = int(np.ceil(h)) + 2 * m, int(np.ceil(w)) + 2 * m
                x, y = m + h - d, height - m
            scratch = RendererAgg(width, height, dpi)
            gc = scratch.new_gc()
            gc.set_foreground(color)
            scratch.draw_text(gc, x, y, text, prop, rotation)
            gc.restore()
            # draw_image wants the bottom row first.
            rgba = np.asarray(scratch.buffer_rgba())[::-1].copy()
            ink_w, ink_h = (w, h) if rotation == 0 else (h, w)
            item = (rgba, ink_w, ink_h, d)
            if len(self._items) >= self.maxsize:
                self._items.pop(next(iter(self._items)))
        self._items[key] = item
        return item

    def extent(self, text: str, size: float, dpi: float, rotation: int = 0
               ) -> tuple[float, float]:
        """Width and height (pixels) of the ink box of ``text``."""
        _, w, h, _ = self._sprite(text, size, "k", rotation, dpi)
        return w, h

    def draw(self, renderer: RendererAgg, text: str, x: float, y: float, *, size: float,
             color: str = "black", rotation: int = 0, ha: str = "center",
             va: str = "center") -> tuple[float, float, float, float]:
        """Draw ``text`` aligned to ``(x, y)`` (display pixels, y up).

        Parameters
        ----------
        renderer : RendererAgg
        text : str
        x, y : float
            Anchor point.
        size : float
            Font size (points).
        color : str
        rotation : int
            0 or 90 (degrees, counter-clockwise).
        ha, va : str
            ``'left'`` / ``'center'`` / ``'right'`` and ``'bottom'`` / ``'center'`` /
            ``'top'`` / ``'baseline'`` (unrotated text): which side of the ink box is
            at the anchor.

        Returns
        -------
        tuple of float
            The ink box drawn, ``(x0, y0, x1, y1)``.
        """
        if not text:
            return (x, y, x, y)
        rgba, w, h, descent = self._sprite(text, size, color, rotation, renderer.dpi)
        x0 = x - {"left": 0.0, "center": 0.5, "right": 1.0}[ha] * w
        if va == "baseline":
            y0 = y - descent
        else:
            y0 = y - {"bottom": 0.0, "center": 0.5, "top": 1.0}[va] * h
        gc = renderer.new_gc()
        renderer.draw_image(gc, round(x0) - self._MARGIN, round(y0) - self._MARGIN, rgba)
        gc.restore()
        return (x0, y0, x0 + w, y0 + h)


def _simplify_labels(labels: list[str]) -> list[str]:
    """Drop the leading fields a label shares with the one before (as WCSAxes does).

    ``['3ʰ26ᵐ20ˢ', '3ʰ26ᵐ00ˢ', '3ʰ25ᵐ40ˢ']`` becomes ``['3ʰ26ᵐ20ˢ', '00ˢ', '25ᵐ40ˢ']``.
    """
    numeric = "0123456789.+-\N{MINUS SIGN}"

    def last_number_start(label: str) -> int:
        in_number = False
        for j in range(len(label) - 1, -1, -1):
            if in_number and label[j] not in numeric:
                return j + 1
            in_number = in_number or label[j] in numeric
        return 0

    out = list(labels)
    for i in range(1, len(labels)):
        t1, t2 = labels[i - 1], labels[i]
        if t1 == t2:
            start = last_number_start(t2)
        else:
            start = 0
            for j in range(min(len(t1), len(t2))):
                if t1[j] != t2[j]:
                    start = last_number_start(t2[:j + 1])
                    break
            else:
                if len(t2) > len(t1):
                    start = last_number_start(t2[:len(t1) + 1])
        out[i] = t2[start:]
    return out


class _WorldTicks:
    """Ticks of one world coordinate along one frame edge of a map (WCSAxes' rules).

    Parameters
    ----------
    geometry : CubeGeometry
        With a WCS.
    coord : str
        ``'lon'``, ``'lat'`` or ``'spec'``.
    """

    def __init__(self, geometry: CubeGeometry, coord: str) -> None:
        wcs = geometry.wcs
        assert wcs is not None
        w = wcs.wcs
        self.index = {"lon": w.lng, "lat": w.lat, "spec": w.spec}[coord]
        self.angle = coord != "spec"
        self.wrap = coord == "lon"
        equatorial = geometry.lon_name == "RA"
        # pixel_to_world_values gives degrees for angles and CUNIT for the spectral axis
        unit = u.Unit(w.cunit[w.spec]) if coord == "spec" else u.deg
        if coord == "spec":
            try:
                unit.to(_KMS)
                fl = ScalarFormatterLocator(number=4, unit=unit, format="x.x",
                                            format_unit=_KMS)
            except u.UnitsError:  # not a velocity: WCSAxes' default formatting
                fl = ScalarFormatterLocator(number=4, unit=unit)
        elif coord == "lon":
            fl = AngleFormatterLocator(number=4, unit=u.deg,
                                       format="hh:mm:ss" if equatorial else "d.dd")
            if equatorial:
                fl.sep = ("ʰ", "ᵐ", "ˢ")
        else:
            fl = AngleFormatterLocator(number=4, unit=u.deg,
                                       format="dd:mm" if equatorial else "d.dd")
            if equatorial:
                fl.sep = ("°", "′", "″")
        self.fl = fl
        self.unit = unit

    def locate(self, wcs: WCS, pixels: np.ndarray, t: np.ndarray, grid: np.ndarray
               ) -> tuple[np.ndarray, list[str]]:
        """Ticks along an edge.

        Parameters
        ----------
        wcs : WCS
            The cube's WCS.
        pixels : ndarray
            ``(3, n)`` pixel positions (x, y, z) of points along the edge.
        t : ndarray
            ``(n,)`` the positions along the edge (data coordinates of the panel).
        grid : ndarray
            ``(3, m)`` pixel positions covering the whole panel: as in WCSAxes, the
            tick spacing follows the coordinate's range over the panel.

        Returns
        -------
        positions : ndarray
            Where the ticks cross the edge (same coordinate as ``t``), in order of ``t``.
        labels : list of str
        """
        n = pixels.shape[1]
        both = np.asarray(wcs.pixel_to_world_values(*np.hstack([pixels, grid]))[self.index],
                          dtype=float)
        world, span = both[:n], both[n:]
        ok = np.isfinite(world)
        if ok.sum() < 2:
            return np.empty(0), []
        t, world = t[ok], world[ok]
        span = span[np.isfinite(span)]
        if self.wrap:  # continuous across 0/360 around the first edge point
            ref = world[0]
            world = (world - ref + 180.0) % 360.0 - 180.0 + ref
            span = (span - ref + 180.0) % 360.0 - 180.0 + ref
        span = np.concatenate([span, world])
        lo, hi = float(span.min()), float(span.max())
        if self.angle:  # WCSAxes widens angle ranges by 10 % before choosing the spacing
            lo, hi = lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo)
        values, spacing = self.fl.locator(lo, hi)
        values = np.atleast_1d(np.asarray(values.to_value(self.unit), dtype=float))
        positions, kept = [], []
        for v in values:
            s = np.sign(world - v)
            cross = np.flatnonzero(s[:-1] * s[1:] <= 0)
            if cross.size == 0:
                continue
            i = int(cross[0])
            dw = world[i + 1] - world[i]
            f = 0.0 if dw == 0 else (v - world[i]) / dw
            positions.append(t[i] + f * (t[i + 1] - t[i]))
            kept.append(v % 360.0 if self.wrap else v)
        if not kept:
            return np.empty(0), []
        order = np.argsort(positions)
        positions = np.asarray(positions)[order]
        kept_q = np.asarray(kept)[order] * self.unit
        labels = list(self.fl.formatter(kept_q, spacing))
        return positions, labels


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
        self._world: list[tuple[_WorldTicks, _WorldTicks]] = []
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
            self._world.append((_WorldTicks(geometry, xk), _WorldTicks(geometry, yk)))

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

    def _ticks(self, ax: Any, world: tuple[_WorldTicks, _WorldTicks] | None, panel: int
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
        xl = _simplify_labels(xt[1])
        yl = _simplify_labels(yt[1][::-1])[::-1]
        return (xt[0], xl), (yt[0], yl)

    def _draw_axes_text(self, renderer: RendererAgg, ax: Any,
                        world: tuple[_WorldTicks, _WorldTicks] | None, panel: int) -> None:
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
