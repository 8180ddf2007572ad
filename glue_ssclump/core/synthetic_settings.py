"""Settings of the synthetic-cube generator, its presets, and override handling.

:class:`SyntheticSettings` holds everything that shapes a cube of
:func:`~glue_ssclump.core.synthetic.make_synthetic_cube`; :data:`PRESETS` names a few.
:func:`apply_overrides` and :func:`settings_meta` serve every generator whose settings
are a frozen dataclass (the morphology generator's too).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, TypeVar

Settings = TypeVar("Settings")


@dataclass(frozen=True)
class SyntheticSettings:
    """Everything that shapes a synthetic cube (a preset is one of these).

    Attributes
    ----------
    shape : tuple of int
        ``(nv, ny, nx)``.
    rms : float
        Noise rms, K.
    lag1 : float
        Lag-1 correlation of the noise along velocity.
    beam_fwhm : float
        FWHM (pixels) of the Gaussian that correlates the noise spatially.
    clump_density : float
        Clumps per 1,000 voxels when ``n_clumps`` is not given.
    snr_range : (float, float)
        Peak SNR (peak / rms) range, drawn log-uniformly.
    sigma_major_range : (float, float)
        Major-axis dispersion, pixels (uniform).
    axis_ratio_range : (float, float)
        Minor / major axis ratio (uniform).
    sigma_v_range : (float, float)
        Velocity dispersion, channels (uniform).
    grad_max : float
        Largest velocity gradient along the major axis, channels per pixel.
    overlap_fraction : float
        Fraction of clumps placed 1.5-3 sigma from an earlier clump (they blend).
    diffuse_peak : float
        Peak of the diffuse cloud emission, in rms (0 = none).
    diffuse_scale : (float, float)
        Correlation lengths (Gaussian sigma) of the cloud envelopes: (channels, pixels).
    diffuse_detail_scale : (float, float)
        Correlation lengths of the structure inside the clouds: (channels, pixels).
    diffuse_detail_weight : float
        Share (0-1) of the structure in the field's variance.
    diffuse_cover : float
        Fraction of the cube where the diffuse emission is non-zero (about).
    """

    shape: tuple[int, int, int] = (64, 128, 128)
    rms: float = 0.15
    lag1: float = 0.4
    beam_fwhm: float = 2.0
    clump_density: float = 0.6
    snr_range: tuple[float, float] = (1.5, 30.0)
    sigma_major_range: tuple[float, float] = (1.2, 3.5)
    axis_ratio_range: tuple[float, float] = (0.5, 1.0)
    sigma_v_range: tuple[float, float] = (1.0, 3.0)
    grad_max: float = 0.4
    overlap_fraction: float = 0.25
    diffuse_peak: float = 5.5
    diffuse_scale: tuple[float, float] = (6.0, 12.0)
    diffuse_detail_scale: tuple[float, float] = (2.5, 4.0)
    diffuse_detail_weight: float = 0.5
    diffuse_cover: float = 0.5


PRESETS: dict[str, SyntheticSettings] = {
    "benchmark": SyntheticSettings(),
    "clean": SyntheticSettings(
        clump_density=0.3, snr_range=(8.0, 30.0), overlap_fraction=0.0, diffuse_peak=0.0
    ),
}

#: False-candidate fractions of detectors at the paper's settings (registry defaults) on
#: the preset's default shape (64, 128, 128), seeds 0, 1, 2, scored by
#: :func:`score_candidates` with its defaults: ``(mean, min, max)`` when detecting at the
#: injected rms ('true_rms') and at :func:`~glue_ssclump.core.cube.estimate_rms`
#: ('estimated_rms'). Reproduce with ``benchmarks/bench_samples.py --false-fractions``.
PRESET_FALSE_FRACTIONS: dict[str, dict[str, dict[str, tuple[float, float, float]]]] = {
    "benchmark": {
        "clumpfind": {"true_rms": (0.600, 0.591, 0.609),
                      "estimated_rms": (0.665, 0.657, 0.671)},
        "fellwalker": {"true_rms": (0.359, 0.342, 0.377),
                       "estimated_rms": (0.387, 0.371, 0.413)},
        "dendrogram": {"true_rms": (0.233, 0.211, 0.245),
                       "estimated_rms": (0.286, 0.265, 0.307)},
    },
    "clean": {
        "clumpfind": {"true_rms": (0.014, 0.011, 0.017)},
        "fellwalker": {"true_rms": (0.003, 0.0, 0.009)},
        "dendrogram": {"true_rms": (0.003, 0.0, 0.008)},
    },
}


def apply_overrides(base: Settings, overrides: dict[str, Any]) -> Settings:
    """``base`` with the fields given in ``overrides`` replaced (``None`` = not given).

    Parameters
    ----------
    base : dataclass instance
        The preset.
    overrides : dict
        Field values; ``None`` keeps the preset's, ``shape`` is made a tuple of ints.

    Returns
    -------
    dataclass instance
        A new settings object.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    if "shape" in given:
        given["shape"] = tuple(int(n) for n in given["shape"])
    return replace(base, **given)


def settings_meta(settings: Any) -> dict[str, Any]:
    """The settings as a plain dict for a truth table's ``meta`` (tuples as lists).

    Parameters
    ----------
    settings : dataclass instance
        The settings a cube was made with.

    Returns
    -------
    dict
        Field name -> value.
    """
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(settings).items()}


def resolve_settings(preset: str | SyntheticSettings | None, **overrides: Any
                     ) -> SyntheticSettings:
    """The settings of a preset (name or object) with ``overrides`` applied.

    Parameters
    ----------
    preset : str, SyntheticSettings or None
        A name in :data:`PRESETS` (case-insensitive; ``None`` = ``'benchmark'``) or
        settings to start from.
    **overrides
        :class:`SyntheticSettings` fields; ``None`` keeps the preset's value.

    Returns
    -------
    SyntheticSettings

    Raises
    ------
    ValueError
        For an unknown preset name.
    """
    if isinstance(preset, SyntheticSettings):
        base = preset
    else:
        name = "benchmark" if preset is None else str(preset).lower()
        if name not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
        base = PRESETS[name]
    return apply_overrides(base, overrides)
