"""Ticks and labels of a world coordinate along a map's edge, by WCSAxes' rules.

The fast figure draws its map axes itself; these give the same tick positions and
labels as WCSAxes, from astropy's own formatter-locators, without WCSAxes' drawing
machinery.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
from astropy.visualization.wcsaxes.formatter_locator import (
    AngleFormatterLocator,
    ScalarFormatterLocator,
)
from astropy.wcs import WCS

from .geometry import KMS, CubeGeometry

__all__ = ["WorldTicks", "simplify_labels"]


def simplify_labels(labels: list[str]) -> list[str]:
    """Drop the leading fields a label shares with the one before (as WCSAxes does).

    ``['3ʰ26ᵐ20ˢ', '3ʰ26ᵐ00ˢ', '3ʰ25ᵐ40ˢ']`` becomes ``['3ʰ26ᵐ20ˢ', '00ˢ', '25ᵐ40ˢ']``.

    Parameters
    ----------
    labels : list of str
        Tick labels in their order along the frame.

    Returns
    -------
    list of str
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


class WorldTicks:
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
                unit.to(KMS)
                fl = ScalarFormatterLocator(number=4, unit=unit, format="x.x",
                                            format_unit=KMS)
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
