"""The verification figure: three integrated maps with WCS axes and two spectra.

The axes are created once per cube (:meth:`VerificationFigure.setup`); showing a
candidate only changes artists in place (``set_data``, ``set_extent``, limits), which
is what keeps stepping through tens of thousands of candidates fast. The class only
needs a matplotlib ``Figure`` (Qt canvas in the viewer, Agg in the benchmark); it is the
figure that is saved.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..candidates import CandidateViews
from .geometry import KMS, CubeGeometry, interp_velocity
from .panels import MapPanel, SpectrumPanel

__all__ = ["VerificationFigure"]


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
        self.maps: list[MapPanel] = []
        self.spectra: list[SpectrumPanel] = []
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
                self.maps.append(MapPanel(ax, kind[0], kind[1]))
        else:
            for col, (xl, yl) in enumerate((("x", "y"), ("x", "channel"), ("y", "channel"))):
                ax = fig.add_subplot(gs[0, 2 * col:2 * col + 2])
                ax.set_xlabel(f"{xl} (pix)", fontsize=9)
                ax.set_ylabel(yl if yl == "channel" else f"{yl} (pix)", fontsize=9)
                ax.tick_params(labelsize=8)
                self.maps.append(MapPanel(ax, xl, yl))
        self.maps[0].ax.set_aspect("equal", adjustable="box")
        unit = geometry.intensity_unit or "K"
        vunit = geometry.velocity_unit
        self.spectra = [
            SpectrumPanel(fig.add_subplot(gs[1, 0:3]), "peak spectrum", unit, vunit),
            SpectrumPanel(fig.add_subplot(gs[1, 3:6]), "mean spectrum (footprint)",
                           unit, vunit),
        ]
        # Below the spectra, where it never hides a line.
        fig.legend(handles=[self.spectra[0].vpeak, self.spectra[0].vcen, self.spectra[0].span],
                   loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=3, fontsize=8,
                   frameon=False)
        self._vname = vname

    def _style_wcs_axes(self, ax: Any, kind: str, geo: CubeGeometry) -> None:
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
            # labels cost far more to render, and every candidate redraws them.
            lon.set_separator(("ʰ", "ᵐ", "ˢ"))
            lat.set_separator(("°", "′", "″"))
        spec.set_format_unit(KMS)
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
        """Show ``text`` in the middle of the figure (and hide the panels if non-empty).

        Parameters
        ----------
        text : str
            The message; ``''`` shows the panels again.
        """
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
        v_lo = interp_velocity(geo.velocity, z_lo - 0.5)
        v_hi = interp_velocity(geo.velocity, z_hi + 0.5)
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
