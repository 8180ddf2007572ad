"""Text of the viewer's side panel: the info table, progress, position and autosave."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...core.labels import (
    LABEL_CLUMP,
    LABEL_COLOURS,
    LABEL_NAMES,
    LABEL_NONE,
    LABEL_NOT_CLUMP,
    LABEL_UNCERTAIN,
)
from ...integration.navigation import CatalogView
from ...integration.pairing import META_DETECTOR, META_RMS, meta_key
from ...integration.writeback import P_CLUMP, VERDICT

__all__ = ["autosave_text", "info_html", "order_text", "progress_html", "rms_text"]

_ORDER_TEXT = {"catalogue": "catalogue order", "uncertain": "most uncertain first",
               "snr": "lowest SNR first", "list": "given list of ids"}


def rms_text(value: Any) -> str:
    """The catalogue's noise rms for the info panel ('–' when unknown)."""
    try:
        rms = float(value)
    except (TypeError, ValueError):
        return "–"
    return f"{rms:.3g} K" if np.isfinite(rms) and rms > 0 else "–"


def order_text(order: str, seed: int) -> str:
    """How the navigation order is described after the candidate's position."""
    if order == "random":
        return f"random, seed {seed}"
    return _ORDER_TEXT.get(order, str(order))


def progress_html(labels: np.ndarray) -> str:
    """"Labelled k / n: a clump, b not, c uncertain", coloured as the buttons."""
    counts = {code: int((labels == code).sum()) for code in LABEL_NAMES}
    n = int(labels.size)
    done = n - counts[LABEL_NONE]
    return (f"Labelled {done} / {n}: <b style='color:{LABEL_COLOURS[LABEL_CLUMP]}'>"
            f"{counts[LABEL_CLUMP]} clump</b>, <b style='color:{LABEL_COLOURS[LABEL_NOT_CLUMP]}'>"
            f"{counts[LABEL_NOT_CLUMP]} not</b>, <b style='color:"
            f"{LABEL_COLOURS[LABEL_UNCERTAIN]}'>{counts[LABEL_UNCERTAIN]} uncertain</b>")


def autosave_text(path: str, saved_at: str = "") -> str:
    """The autosave line: the sidecar path, and when it was last written there."""
    if not path:
        return "Labels autosave: –"
    when = f" (saved {saved_at})" if saved_at else ""
    # Zero-width spaces let the label wrap a long path at its separators.
    wrapped = str(path).replace("/", "/\u200b").replace("\\", "\\\u200b")
    return f"Labels autosave{when}: {wrapped}"


def info_html(cat: CatalogView, row: int, label: int) -> str:
    """The catalogue values of candidate ``row`` as an HTML table.

    Parameters
    ----------
    cat : CatalogView
    row : int
        Catalogue row.
    label : int
        Its manual label code.
    """
    meta = cat.data.meta
    short = {"RA": "RA", "DEC": "Dec", "GLON": "l", "GLAT": "b"}
    lon_name = short.get(str(meta.get(meta_key("lon_name"), "")), "lon")
    lat_name = short.get(str(meta.get(meta_key("lat_name"), "")), "lat")

    def num(name: str, fmt: str) -> str:
        value = cat.value(name, row)
        if value is None:
            return "–"
        try:
            fval = float(value)
        except (TypeError, ValueError):
            return str(value)
        return "–" if not np.isfinite(fval) else format(fval, fmt)

    detector = cat.value("detector", row)
    if detector is None:
        detector = meta.get(META_DETECTOR, "–")
    flux_int = num("flux_int", ".4g")
    flux_line = (f"{flux_int} K km/s arcsec²" if flux_int != "–"
                 else f"{num('flux', '.4g')} K")
    verdict = cat.value(VERDICT, row)
    verdict = str(verdict) if verdict not in (None, "") else "–"
    p = num(P_CLUMP, ".3f")
    label_text = LABEL_NAMES.get(label, str(label)) or "not labelled"
    rows = [
        ("id", f"{int(cat.ids[row])}"),
        ("detector", str(detector)),
        ("peak", f"{num('peak_value', '.2f')} K"),
        ("integrated flux", flux_line),
        ("voxels", num("npix", ".0f")),
        (f"centroid {lon_name}", f"{num('cen_lon', '.5f')}°"),
        (f"centroid {lat_name}", f"{num('cen_lat', '.5f')}°"),
        ("centroid v", f"{num('cen_vel', '.2f')} km/s"),
        ("peak SNR", num("snr_peak", ".1f")),
        # the samples' background noise uses this rms: the verdicts depend on it
        ("rms (samples)", rms_text(meta.get(META_RMS))),
        ("p_clump", p),
        ("verdict", verdict),
        ("manual label", f"<b style='color:{LABEL_COLOURS.get(label, '#000')}'>"
                         f"{label_text}</b>"),
    ]
    body = "".join(f"<tr><td style='color:#555555; padding-right:8px'>{k}</td>"
                   f"<td>{v}</td></tr>" for k, v in rows)
    return f"<table cellspacing='2'>{body}</table>"


def same_path(a: Path | None, b: str) -> bool:
    """True when ``a`` is the path ``b`` (as the autosave label compares them)."""
    return a is not None and str(a) == str(b)
