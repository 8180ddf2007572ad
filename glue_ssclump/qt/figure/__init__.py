"""The verification figure: three integrated maps with WCS axes and two spectra.

One concept per module:

* :mod:`.geometry`: what the figure needs to know about a cube's axes
  (:class:`CubeGeometry`, :func:`cube_geometry`);
* :mod:`.panels`: the artists of one map or spectrum panel, and the colours;
* :mod:`.verification`: :class:`VerificationFigure`, the five panels with WCSAxes
  (the figure that is saved);
* :mod:`.fast`: :class:`FastVerificationFigure`, the same picture drawn for the screen
  (the render thread) without a full matplotlib redraw, with ticks from
  :mod:`.world_ticks` and text from :class:`~.sprites.TextSprites`.
"""

from .fast import FastVerificationFigure
from .geometry import CubeGeometry, cube_geometry
from .panels import CENTROID_COLOR, CMAP, NEIGHBOUR, OUTLINE, PEAK_COLOR, SHADE
from .sprites import TextSprites
from .verification import VerificationFigure

__all__ = ["CENTROID_COLOR", "CMAP", "NEIGHBOUR", "OUTLINE", "PEAK_COLOR", "SHADE",
           "CubeGeometry", "FastVerificationFigure", "TextSprites", "VerificationFigure",
           "cube_geometry"]
