"""PPV cube input: FITS file or HDU -> :class:`PPVCube` (float32 ``(v, y, x)`` in K).

Everything downstream (detectors, catalogue, samples) works on the numpy array of a
:class:`PPVCube` and its 3-axis WCS. :func:`read_cube` reads through spectral-cube and
normalises what real survey cubes look like:

- a degenerate 4th (Stokes) axis is dropped; more than one Stokes plane is an error;
- the spectral axis is converted to km/s: VELO / VRAD / VOPT keep their convention,
  FREQ (with RESTFRQ / RESTFREQ) becomes radio velocity (VRAD), WAVE / AWAV (with
  RESTWAV) becomes optical velocity (VOPT);
- no BUNIT: the values are taken to be K (with one log warning);
- Jy/beam with a beam (BMAJ/BMIN) is converted to K; without a beam, or when the
  conversion fails, the data stay in Jy/beam and :attr:`PPVCube.notes` says so;
- NaN blanks are kept as NaN.

Problems that make a cube unusable raise :class:`CubeError` with a message that names
the problem and the fix.

This module is the public entry point; the work is split by concept:

- :mod:`~glue_ssclump.core.ppv_cube`: :class:`PPVCube`, :class:`CubeError`,
  :func:`mask_header` (and why ``cube.wcs`` works in m/s);
- :mod:`~glue_ssclump.core.fits_read`: :func:`read_cube`, finding the cube in a file;
- :mod:`~glue_ssclump.core.fits_header`: keyword checks (sizes, scaling, WCS numbers);
- :mod:`~glue_ssclump.core.cube_wcs`: axis order and the pixel -> world map;
- :mod:`~glue_ssclump.core.cube_build`: :func:`cube_from_array`, units and velocities;
- :mod:`~glue_ssclump.core.rms`: :func:`estimate_rms`.
"""

from __future__ import annotations

from .cube_build import cube_from_array
from .fits_read import read_cube
from .ppv_cube import KMS, CubeError, PPVCube, mask_header
from .rms import estimate_rms

__all__ = [
    "KMS",
    "CubeError",
    "PPVCube",
    "cube_from_array",
    "estimate_rms",
    "mask_header",
    "read_cube",
]
