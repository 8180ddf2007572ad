"""The noise rms of a PPV cube (:func:`estimate_rms`), robust to emission in every channel."""

from __future__ import annotations

import numpy as np

from .ppv_cube import CubeError

__all__ = ["estimate_rms"]

_GAUSS_MAD = 0.6744897501960817  # median |x| of a unit normal


def estimate_rms(data: np.ndarray) -> float:
    """Robust noise rms (K) of a cube in which emission may fill every channel.

    Method: line emission is positive, so the values below zero are (almost) pure
    noise. Mirroring them about zero gives a symmetric distribution whose rms is the
    noise rms: ``sqrt(mean(x**2 for x < 0))``. Negative outliers (absorption, bad
    channels) are first cut at 6 times a median-based estimate of the same half.
    Weak emission on top of noise pushes some noise voxels above zero, so the value
    is, if anything, slightly low.

    Fallback, when fewer than 1% of the finite values (or 100) are negative (e.g. a
    cube with a positive baseline offset): the median absolute difference between
    adjacent channels, ``1.4826 * median(|d[k+1] - d[k]|) / sqrt(2)``, which removes
    emission that is smooth over a channel.

    Parameters
    ----------
    data : ndarray
        The cube (any shape); NaN ignored.

    Returns
    -------
    float
        The rms in the data's unit.

    Raises
    ------
    CubeError
        If the data have no finite values or the estimate is zero.
    """
    arr = np.asarray(data)
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        raise CubeError("cannot estimate the noise: no finite values; give the rms by hand")
    neg = finite[finite < 0].astype(np.float64)
    rms = 0.0
    if neg.size >= max(100, 0.01 * finite.size):
        s0 = np.median(-neg) / _GAUSS_MAD
        neg = neg[neg > -6.0 * s0]
        rms = float(np.sqrt(np.mean(neg * neg)))
    elif arr.ndim >= 1 and arr.shape[0] > 1:
        diff = np.diff(np.asarray(arr, dtype=np.float64), axis=0)
        diff = diff[np.isfinite(diff)]
        if diff.size:
            rms = float(1.4826 * np.median(np.abs(diff)) / np.sqrt(2.0))
    if not np.isfinite(rms) or rms <= 0:
        raise CubeError(
            "cannot estimate the noise (constant or noise-free data); give the rms by hand"
        )
    return rms
