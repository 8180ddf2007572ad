"""The artists of one panel of the verification figure: a map or a spectrum.

Each panel's artists are created once per cube and updated in place for every
candidate (``set_data``, ``set_extent``, limits), never re-created.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import blended_transform_factory

from ..candidates import outline_segments

__all__ = ["CENTROID_COLOR", "CMAP", "NEIGHBOUR", "OUTLINE", "PEAK_COLOR", "SHADE",
           "MapPanel", "SpectrumPanel"]

CMAP = "inferno"
OUTLINE = "#00e5ff"  # the candidate's mask
NEIGHBOUR = "#b0b0b0"  # other candidates inside the cut-out
PEAK_COLOR = "#d62728"
CENTROID_COLOR = "#1f77b4"
SHADE = "#ffbf00"


class MapPanel:
    """One integrated map: image, outline of the candidate, neighbours' outlines, peak."""

    def __init__(self, ax: Any, xname: str, yname: str) -> None:
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
        """Show one candidate's map.

        Parameters
        ----------
        image : ndarray
            The integrated map of the cut-out.
        foot, other : ndarray of bool
            Footprints of the candidate and of the other candidates in the cut-out.
        x0, y0 : int
            Pixel of the cut-out's lower left corner.
        peak : tuple of float
            The candidate's peak (data coordinates of the panel).
        """
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


class SpectrumPanel:
    """One spectrum with dashed peak / centroid velocities and the shaded range."""

    def __init__(self, ax: Any, title: str, unit: str, vunit: str) -> None:
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
        """Show one candidate's spectrum.

        Parameters
        ----------
        v, spectrum : ndarray
            Velocity and value of each channel of the cut-out.
        v_lo, v_hi : float
            The candidate's velocity range (shaded).
        v_peak, v_cen : float
            Peak and centroid velocities (dashed lines).
        half_channel : float
            Half a channel width: the x range reaches the outer channels' edges.
        """
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
