"""Structured hosts: spiral arms, a bar, flocculent texture and dust lanes.

A smooth Sersic host flatters a classical finder: subtract a median-filtered model and
only the clumps are left.  Galaxy Zoo: Clump Scout hosts are mostly star-forming discs
with arms, bars, dust lanes and patchy light, whose residuals a smooth model cannot
remove.  :func:`host_structure` draws that structure for one galaxy, in the disc's own
plane, so it projects with the disc's inclination and angle.

A disc near enough to show its arms also resolves its clumps: at z = 0.02 one SDSS PSF
FWHM is about 0.5 kpc, and a 1 kpc clump spans two (Popp et al., appendix A).  So the
clumps of a structured host are Gaussians of intrinsic FWHM drawn from
:data:`CLUMP_SIZE_FWHM` (0 to 1.2 PSF FWHMs), convolved with the PSF; stars stay points.

Truth rule (what stays a clump): the structure is extended by construction.  Arms and
lanes are many PSF widths long, and the texture is a Gaussian random field smoothed by a
Gaussian of sigma >= :data:`TEXTURE_SIGMA_FWHM` [0] PSF FWHMs (an intrinsic FWHM of at
least 2.6 PSF FWHMs, over twice the largest clump's).  The only compact sources are the
injected clumps and stars, which stay the truth; a knot of the texture or a bright
stretch of an arm is host light, and a detection there is a false positive for every
method alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["HOSTS", "HostStructure", "host_structure", "disc_coordinates", "gaussian_spot",
           "CLUMP_SIZE_FWHM"]

#: host kinds ``synth_galaxy`` draws: smooth Sersic discs, structured discs, or a 50 / 50
#: mixture decided per galaxy
HOSTS = ("smooth", "structured", "mixed")
#: probability that a ``"mixed"`` host is structured
MIXED_STRUCTURED_P = 0.5
#: texture smoothing sigma, in r-band PSF FWHMs (min, max): an intrinsic FWHM of 2.6 PSF
#: FWHMs or more, over twice the largest clump's
TEXTURE_SIGMA_FWHM = (1.1, 2.0)
#: intrinsic FWHM of the clumps of a structured host, in r-band PSF FWHMs (min, max)
CLUMP_SIZE_FWHM = (0.0, 1.2)
#: extinction in g and i relative to r (a Milky-Way-like law at SDSS wavelengths)
DUST_RATIOS = (1.39, 1.0, 0.76)


@dataclass
class HostStructure:
    """The structure of one disc, as maps on the image grid (before the PSF).

    Attributes
    ----------
    base : ndarray
        The disc's smooth light times the texture (r band, flux per pixel).
    arms : ndarray
        Extra light in the arms (bluer than the disc), same units.
    bar : ndarray
        Bar light (the bulge's colour), same units.
    tau_r : ndarray
        r-band optical depth of the dust lanes (0 where there are none).
    arm_g_r : float
        How much bluer in g - r the arms are than the disc (mag).
    meta : dict
        The drawn parameters (for the truth table's meta).
    """

    base: np.ndarray
    arms: np.ndarray
    bar: np.ndarray
    tau_r: np.ndarray
    arm_g_r: float
    meta: dict

    def dust(self, band: int) -> np.ndarray:
        """Transmission of the lanes in band 0, 1, 2 (g, r, i)."""
        return np.exp(-DUST_RATIOS[band] * self.tau_r)

    def light(self, band: int, disc: float = 1.0, arm: float = 1.0, bar: float = 1.0
              ) -> np.ndarray:
        """The structured disc's light in band 0, 1, 2 (g, r, i) before the PSF: disc,
        arms and bar scaled by their colour factors, behind the lanes (defaults: r)."""
        return self.dust(band) * (self.base * disc + self.arms * arm + self.bar * bar)


def disc_coordinates(shape: tuple[int, int], x0: float, y0: float, q: float, theta: float
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Radius (px, in the disc plane) and azimuth (rad) of every pixel of an inclined disc
    with axis ratio ``q`` whose major axis is at ``theta`` (Sersic2D's convention)."""
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    dx, dy = xx - x0, yy - y0
    u = dx * np.cos(theta) + dy * np.sin(theta)
    v = (-dx * np.sin(theta) + dy * np.cos(theta)) / max(q, 0.05)
    return np.hypot(u, v), np.arctan2(v, u)


def host_structure(rng: np.random.Generator, disc: np.ndarray, x0: float, y0: float,
                   r_eff: float, q: float, theta: float, fwhm: float) -> HostStructure:
    """Draw arms, texture, maybe a bar and maybe dust lanes for a disc.

    Parameters
    ----------
    rng : numpy Generator
        Its own stream (the caller's clump and star draws do not depend on it).
    disc : ndarray
        The smooth disc (r band, flux per pixel); the structured disc keeps its total
        flux, so the host's brightness distribution is comparable with a smooth host.
    x0, y0, r_eff, q, theta : float
        The disc's centre (px), effective radius (px), axis ratio and angle (rad).
    fwhm : float
        r-band PSF FWHM (px): the texture's scale is set in PSF widths.

    Returns
    -------
    HostStructure
    """
    from scipy.ndimage import gaussian_filter

    r, phi = disc_coordinates(disc.shape, x0, y0, q, theta)
    # arms: a logarithmic spiral with m arms, sharpened by a power, none in the centre
    m = int(rng.choice([1, 2, 2, 2, 3, 4]))
    pitch = np.deg2rad(rng.uniform(12.0, 30.0))
    phase = rng.uniform(0, 2 * np.pi)
    sharp = rng.uniform(2.0, 8.0)
    strength = rng.uniform(0.5, 2.5)
    r_in = r_eff * rng.uniform(0.3, 0.6)
    wind = m * np.log(np.maximum(r, 1e-3) / r_eff) / np.tan(pitch)
    ridge = (0.5 * (1.0 + np.cos(m * (phi - phase) - wind))) ** sharp
    inner = 1.0 - np.exp(-(r / r_in) ** 2)
    # flocculent texture: a log-normal random field on scales of one to a few PSF widths
    sigma_t = fwhm * rng.uniform(*TEXTURE_SIGMA_FWHM)
    field = gaussian_filter(rng.standard_normal(disc.shape), sigma_t, mode="wrap")
    field /= max(float(field.std()), 1e-12)
    texture_amp = rng.uniform(0.15, 0.45)
    texture = np.exp(texture_amp * field - 0.5 * texture_amp**2)
    base = disc * texture
    arms = disc * strength * inner * ridge * texture
    scale = disc.sum() / max(float((base + arms).sum()), 1e-12)
    base, arms = base * scale, arms * scale

    bar = np.zeros_like(disc)
    has_bar = bool(rng.random() < 0.35)
    if has_bar:
        bar_len = r_eff * rng.uniform(0.4, 0.8)
        bar_wid = bar_len * rng.uniform(0.25, 0.4)
        bar_angle = rng.uniform(0, np.pi)
        bu = r * np.cos(phi - bar_angle)
        bv = r * np.sin(phi - bar_angle)
        bar = np.exp(-((bu / bar_len) ** 4 + (bv / bar_wid) ** 2))
        bar *= rng.uniform(0.05, 0.15) * disc.sum() / max(float(bar.sum()), 1e-12)

    tau_r = np.zeros_like(disc)
    has_dust = bool(rng.random() < 0.5)
    if has_dust:
        # lanes on the arms' inner (leading) edges
        lag = rng.uniform(0.3, 0.6)
        lane = (0.5 * (1.0 + np.cos(m * (phi - phase) - wind + lag))) ** (2 * sharp)
        tau_r = rng.uniform(0.2, 0.8) * inner * lane
    meta = {"arms": m, "pitch_deg": float(np.rad2deg(pitch)), "arm_strength": float(strength),
            "texture_sigma_pix": float(sigma_t), "texture_amp": float(texture_amp),
            "bar": has_bar, "dust": has_dust}
    return HostStructure(base, arms, bar, tau_r, float(rng.uniform(0.1, 0.25)), meta)


def gaussian_spot(xx: np.ndarray, yy: np.ndarray, x: float, y: float, fwhm: float
                  ) -> np.ndarray:
    """A unit-flux circular Gaussian of FWHM ``fwhm`` px centred on ``(x, y)``, sampled at
    the pixel centres (a resolved clump before the PSF)."""
    s2 = (fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))) ** 2
    return np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2.0 * s2)) / (2.0 * np.pi * s2)
