"""Galaxy images: g, r, i planes, the paper's Lupton RGB, reading FITS / PNG / JPEG.

Pixel convention (used by every catalogue of :mod:`glue_ssclump.core.galaxy`): ``x`` is
the numpy column index and ``y`` the numpy row index of the array *as stored*, 0-based,
pixel centres at integers.  Row 0 is the first row of the FITS data array (FITS
``NAXIS2`` index 1, the bottom row in ds9) and the top row of a PNG / JPEG file.  glue
shows PNGs flipped (row 0 at the bottom), FITS as stored; a front end that displays a
PNG must flip ``y`` itself (``y_shown = ny - 1 - y``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SSClumpError

__all__ = [
    "GalaxyError", "GalaxyImage", "read_galaxy_image", "lupton_rgb", "image_from_planes",
    "noise_sigma", "write_gri_fits", "DEFAULT_PSF_FWHM_PIX", "LUPTON_Q", "LUPTON_ALPHA",
    "LUPTON_SCALES",
]

#: The paper's median r-band PSF FWHM (1.12 arcsec) at its median 0.2 arcsec / pixel;
#: used when neither the caller nor the file give one.
DEFAULT_PSF_FWHM_PIX = 5.6
#: Lupton et al. (2004) parameters of the Galaxy Zoo: Clump Scout cut-outs (Popp et al.,
#: Table A1): softening Q, stretch alpha, per-band scales for g, r, i -> R, G, B.
LUPTON_Q = 7.0
LUPTON_ALPHA = 0.2
LUPTON_SCALES = (0.7, 1.17, 1.818)
#: The planes are divided by this many r-band noise sigmas before the stretch, so the
#: RGB looks the same whatever the flux units of the input (nanomaggies, counts, ...).
NOISE_UNITS = 4.0

_PSF_KEYS = ("PSF_FWHM", "PSFFWHM", "FWHM_PIX", "SEEINGPX")
_RGB_SUFFIXES = {".png", ".jpg", ".jpeg"}


class GalaxyError(SSClumpError):
    """A galaxy image (or galaxy model file) cannot be used; the message says why."""


@dataclass
class GalaxyImage:
    """One galaxy image: linear g, r, i planes (when known) and the RGB the network sees.

    Attributes
    ----------
    planes : ndarray or None
        float32 ``(3, ny, nx)``, bands g, r, i, sky-subtracted, any linear flux unit;
        None for an RGB-only input (PNG / JPEG), where flux ratios cannot be measured.
    rgb : ndarray
        uint8 ``(ny, nx, 3)``: the Lupton composite (g, r, i -> R, G, B) of ``planes``, or
        the file's pixels for an RGB input.  Row 0 = first row of ``planes``.
    wcs : astropy.wcs.WCS or None
        Celestial WCS of the planes (2 axes), if the FITS header had one.
    psf_fwhm_pix : float
        r-band PSF FWHM in pixels: merging distance, match radius, photometry apertures.
    path : str or None
        Where the image was read from.
    """

    planes: np.ndarray | None
    rgb: np.ndarray
    wcs: object | None = None
    psf_fwhm_pix: float = DEFAULT_PSF_FWHM_PIX
    path: str | None = None
    meta: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)``."""
        return (int(self.rgb.shape[0]), int(self.rgb.shape[1]))


def noise_sigma(plane: np.ndarray) -> float:
    """Robust per-pixel noise of a sky-subtracted plane (MAD of pixel differences).

    Differences of neighbouring pixels cancel the smooth galaxy light, so the estimate
    is the noise even when the galaxy fills the image.
    """
    a = np.asarray(plane, dtype=np.float64)
    d = np.diff(a, axis=1).ravel()
    d = d[np.isfinite(d)]
    if d.size == 0:
        return 1.0
    mad = float(np.median(np.abs(d - np.median(d))))
    sigma = 1.4826 * mad / np.sqrt(2.0)
    if not sigma > 0:
        sigma = float(np.std(d)) / np.sqrt(2.0)
    return sigma if sigma > 0 else 1.0


def lupton_rgb(planes: np.ndarray, sigma_r: float | None = None) -> np.ndarray:
    """The paper's Lupton RGB of g, r, i planes (Q=7, alpha=0.2, minimum 0).

    astropy's ``make_lupton_rgb`` computes ``asinh(Q x / stretch)``, Lupton's formula
    ``asinh(alpha Q x)``, so ``stretch = 1 / alpha = 5``.  The bands are multiplied by
    the per-band scales 0.7, 1.17, 1.818 and mapped g, r, i -> R, G, B (Table A1); ``x``
    is in units of 4 r-band noise sigmas (see :data:`NOISE_UNITS`).

    Parameters
    ----------
    planes : ndarray
        ``(3, ny, nx)`` g, r, i.
    sigma_r : float, optional
        r-band noise; estimated with :func:`noise_sigma` when not given.

    Returns
    -------
    ndarray
        uint8 ``(ny, nx, 3)``.
    """
    from astropy.visualization import make_lupton_rgb

    p = np.nan_to_num(np.asarray(planes, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if sigma_r is None:
        sigma_r = noise_sigma(p[1])
    unit = NOISE_UNITS * float(sigma_r)
    g, r, i = (np.clip(p[k] * LUPTON_SCALES[k] / unit, 0.0, None) for k in range(3))
    with np.errstate(invalid="ignore", divide="ignore"):  # astropy divides 0 by 0 in blank sky
        return make_lupton_rgb(g, r, i, minimum=0.0, stretch=1.0 / LUPTON_ALPHA, Q=LUPTON_Q)


def image_from_planes(planes: np.ndarray, psf_fwhm_pix: float = DEFAULT_PSF_FWHM_PIX,
                      wcs: object | None = None, path: str | None = None) -> GalaxyImage:
    """A :class:`GalaxyImage` from g, r, i planes (the RGB is made here)."""
    planes = np.asarray(planes, dtype=np.float32)
    if planes.ndim != 3 or planes.shape[0] != 3:
        raise GalaxyError(f"planes must be (3, ny, nx) g, r, i; got shape {planes.shape}")
    _check_size(planes.shape[1:], path)
    if not np.isfinite(planes).any():
        raise GalaxyError(f"{path or 'the image'} has no finite pixel; check the file")
    return GalaxyImage(planes=planes, rgb=lupton_rgb(planes), wcs=wcs,
                       psf_fwhm_pix=_check_fwhm(psf_fwhm_pix), path=path)


def _check_fwhm(fwhm: float) -> float:
    fwhm = float(fwhm)
    if not np.isfinite(fwhm) or not 0.5 <= fwhm <= 100:
        raise GalaxyError(
            f"PSF FWHM {fwhm!r} px is not usable; give the r-band seeing in pixels "
            "(0.5-100, e.g. --psf-fwhm 5.6)"
        )
    return fwhm


def _check_size(shape: tuple[int, ...], path: str | None) -> None:
    ny, nx = int(shape[0]), int(shape[1])
    if ny < 16 or nx < 16:
        raise GalaxyError(f"{path or 'the image'} is {nx} x {ny} px; at least 16 x 16 needed")
    if ny * nx > 4096 * 4096:
        raise GalaxyError(
            f"{path or 'the image'} is {nx} x {ny} px; cut out the galaxy first (the model "
            "was trained on 200 x 200 px cut-outs, at most 4096 x 4096 is accepted)"
        )


def _fits_planes(path: Path) -> tuple[list[np.ndarray], list]:
    from astropy.io import fits

    try:
        with fits.open(path, memmap=False) as hdul:
            hdus = [h for h in hdul if getattr(h, "data", None) is not None
                    and getattr(h, "is_image", False) and h.data.ndim >= 2]
            if not hdus:
                raise GalaxyError(f"{path} holds no image HDU; give g, r, i FITS images")
            data = np.asarray(hdus[0].data, dtype=np.float32)
            header = hdus[0].header.copy()
    except GalaxyError:
        raise
    except (OSError, ValueError, TypeError) as exc:
        raise GalaxyError(f"{path} is not a readable FITS file ({exc}); check the file") from exc
    data = np.squeeze(data)
    if data.ndim == 2:
        return [data], [header]
    if data.ndim == 3 and data.shape[0] == 3:
        return [data[k] for k in range(3)], [header] * 3
    raise GalaxyError(
        f"{path} has data of shape {data.shape}; give one 2D plane per band (three files "
        "g, r, i) or one (3, ny, nx) cube with planes g, r, i"
    )


def _celestial_wcs(header) -> object | None:
    import warnings

    from astropy.wcs import WCS, FITSFixedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header).celestial
        except Exception:  # a broken WCS is no WCS: RA/Dec are NaN, pixels still work
            return None
    return wcs if wcs.naxis == 2 and wcs.has_celestial else None


def _header_fwhm(header) -> float | None:
    for key in _PSF_KEYS:
        if key in header:
            try:
                return float(header[key])
            except (TypeError, ValueError):
                continue
    return None


def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise GalaxyError(f"{path} is not a readable PNG / JPEG image ({exc})") from exc
    return np.ascontiguousarray(rgb)


def read_galaxy_image(paths: str | os.PathLike | Sequence[str | os.PathLike],
                      psf_fwhm_pix: float | None = None) -> GalaxyImage:
    """Read a galaxy image: three g, r, i FITS files, one 3-plane FITS, or an RGB PNG / JPEG.

    Parameters
    ----------
    paths : path or sequence of paths
        One path (a ``(3, ny, nx)`` FITS cube with planes g, r, i, or a PNG / JPEG), or
        three 2D FITS paths in the order g, r, i (same shape).
    psf_fwhm_pix : float, optional
        r-band PSF FWHM in pixels.  Default: the FITS header's ``PSF_FWHM`` (pixels) if
        present, else :data:`DEFAULT_PSF_FWHM_PIX` (5.6 px, the paper's median).

    Returns
    -------
    GalaxyImage
        The WCS (celestial part) comes from the r-band header (the cube's header).
        Pixel ``y`` is the numpy row of the array as stored (see the module docstring).

    Raises
    ------
    GalaxyError
        Missing or unreadable files, wrong number of files or planes, mismatched shapes,
        an all-NaN image, an image too small or too large, an unusable FWHM.
    """
    if isinstance(paths, (str, os.PathLike)):
        items = [Path(paths)]
    else:
        items = [Path(p) for p in paths]
    if len(items) not in (1, 3):
        raise GalaxyError(
            f"got {len(items)} files; give three FITS files (g, r, i), one 3-plane FITS "
            "or one PNG / JPEG"
        )
    for p in items:
        if not p.exists():
            raise GalaxyError(f"{p} does not exist; check the path")
        if p.is_dir():
            raise GalaxyError(f"{p} is a folder; give the image file(s)")
    if len(items) == 1 and items[0].suffix.lower() in _RGB_SUFFIXES:
        rgb = _read_rgb(items[0])
        _check_size(rgb.shape[:2], str(items[0]))
        fwhm = DEFAULT_PSF_FWHM_PIX if psf_fwhm_pix is None else psf_fwhm_pix
        return GalaxyImage(planes=None, rgb=rgb, wcs=None, psf_fwhm_pix=_check_fwhm(fwhm),
                           path=str(items[0]))
    planes: list[np.ndarray] = []
    headers: list = []
    for p in items:
        if p.suffix.lower() in _RGB_SUFFIXES:
            raise GalaxyError(f"{p}: give either one PNG / JPEG or FITS files, not a mix")
        data, hdrs = _fits_planes(p)
        planes.extend(data)
        headers.extend(hdrs)
    if len(planes) != 3:
        raise GalaxyError(
            f"{items[0]} holds {len(planes)} plane(s); give three FITS files g, r, i or one "
            "FITS cube with three planes"
        )
    shapes = {pl.shape for pl in planes}
    if len(shapes) != 1:
        raise GalaxyError(
            f"the g, r, i planes differ in shape {sorted(shapes)}; resample them onto one "
            "pixel grid first"
        )
    header = headers[1]
    fwhm = psf_fwhm_pix if psf_fwhm_pix is not None else _header_fwhm(header)
    path = str(items[0]) if len(items) == 1 else ",".join(str(p) for p in items)
    return image_from_planes(np.stack(planes), DEFAULT_PSF_FWHM_PIX if fwhm is None else fwhm,
                             wcs=_celestial_wcs(header), path=path)


def write_gri_fits(path: str | os.PathLike, image: GalaxyImage, header_extra: dict | None = None
                   ) -> Path:
    """Write ``image.planes`` as one ``(3, ny, nx)`` FITS cube (g, r, i), atomically.

    The celestial WCS (if any) and ``PSF_FWHM`` (pixels) go into the header, so
    :func:`read_galaxy_image` reads the file back with the same FWHM and WCS.
    """
    from astropy.io import fits

    from ..atomic import write_atomic

    if image.planes is None:
        raise GalaxyError("an RGB-only image has no g, r, i planes to write")
    header = image.wcs.to_header() if image.wcs is not None else fits.Header()
    header["PSF_FWHM"] = (float(image.psf_fwhm_pix), "r-band PSF FWHM [pix]")
    header["BANDS"] = ("g,r,i", "plane order")
    for key, value in (header_extra or {}).items():
        header[key] = value
    hdu = fits.PrimaryHDU(np.asarray(image.planes, dtype=np.float32), header=header)
    return write_atomic(path, lambda tmp: hdu.writeto(tmp, overwrite=True))
