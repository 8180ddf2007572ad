"""The verification figure: three integrated maps with WCS axes and two spectra.

The axes are created once per cube (:meth:`VerificationFigure.setup`); showing a
candidate only changes artists in place (``set_data``, ``set_extent``, limits), which
is what keeps stepping through tens of thousands of candidates fast. The class only
needs a matplotlib ``Figure`` (Qt canvas in the viewer, Agg in the benchmark).
"""

from __future__ import annotations

from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.wcs import WCS
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import blended_transform_factory

from .candidates import CandidateViews, outline_segments

__all__ = ["CubeGeometry", "VerificationFigure", "cube_geometry"]

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
