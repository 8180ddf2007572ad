"""Text drawn as cached bitmaps: what lets the fast figure skip text layout."""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.font_manager import FontProperties

__all__ = ["TextSprites"]


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
        """Width and height (pixels) of the ink box of ``text``.

        Parameters
        ----------
        text : str
        size : float
            Font size (points).
        dpi : float
        rotation : int
            0 or 90 (degrees).

        Returns
        -------
        tuple of float
        """
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
