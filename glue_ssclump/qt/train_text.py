"""What the train & verify dialog says: seed counts and run outcomes, as label text.

Qt-free: every function returns the string (plain or rich text) that the dialog puts
in one of its labels, so the wording can be read and tested in one place.
"""

from __future__ import annotations

from ..core.ensemble import verifier_name
from ..core.jobs import TrainOutcome
from ..core.seeds import SeedPlan

__all__ = ["ERROR", "WARN", "cancelled_text", "counts_html", "error_html", "escape_html",
           "plan_html", "saved_text", "succeeded_text"]

#: Colour of warnings in rich text.
WARN = "#b35900"
#: Colour of errors in rich text.
ERROR = "#c0392b"

_NO_CATALOG = ("No candidate catalogue in this session: detect candidates first "
               "(SS-3D-Clump: detect clump candidates…).")


def escape_html(text: str) -> str:
    """``text`` for a rich-text label: markup characters escaped, newlines as ``<br>``.

    Parameters
    ----------
    text : str

    Returns
    -------
    str
    """
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\n", "<br>"))


def error_html(text: str) -> str:
    """``text`` as a red error line (rich text, escaped).

    Parameters
    ----------
    text : str

    Returns
    -------
    str
    """
    return f"<span style='color:{ERROR}'>✖ {escape_html(text)}</span>"


def plan_html(plan: SeedPlan) -> str:
    """A seed plan's counts, warnings and errors as rich text for a label.

    Parameters
    ----------
    plan : SeedPlan

    Returns
    -------
    str
    """
    pool = ("all candidates" if plan.pool is None
            else f"{plan.n_pool} of {plan.n_total} candidates")
    lines = [f"Seeds in the pool: <b>{plan.n_clump}</b> clump, "
             f"<b>{plan.n_not_clump}</b> not clump; pool: {pool}"]
    if plan.n_heldout:
        lines.append(f"{plan.n_heldout} labelled candidates held out for P/R/F1")
    lines += [f"<span style='color:{WARN}'>⚠ {w}</span>" for w in plan.warnings]
    lines += [f"<span style='color:{ERROR}'>✖ {e}</span>" for e in plan.errors]
    return "<br>".join(lines)


def counts_html(plan: SeedPlan | None, mode: str) -> str:
    """The seed-count line for the current choices.

    Parameters
    ----------
    plan : SeedPlan or None
        ``None`` when the session has no candidate catalogue.
    mode : str
        ``'train'`` or ``'verify'`` (verifying needs no seeds).

    Returns
    -------
    str
        Rich text.
    """
    if plan is None:
        return f"<span style='color:{ERROR}'>{_NO_CATALOG}</span>"
    if mode == "verify":
        return (f"Verify only: the model is applied to all {plan.n_total} candidates; "
                "no seeds needed.")
    return plan_html(plan)


def succeeded_text(outcome: TrainOutcome) -> str:
    """The status line after a completed run: counts, threshold and noise level.

    Parameters
    ----------
    outcome : TrainOutcome

    Returns
    -------
    str
        Plain text.
    """
    v = outcome.verification
    counts = v.counts()
    what = "Trained and verified" if outcome.job.train else "Verified"
    return (f"{what} {len(v.catalog)} candidates in {outcome.seconds:.0f} s: "
            f"{counts['clump']} clump, {counts['rejected']} rejected, "
            f"{counts['uncertain']} uncertain (threshold {v.threshold:.2f} ± "
            f"{v.uncertain_band:.2f}; sample background rms {v.rms:.3g} K, "
            f"{v.rms_source}).")


def saved_text(outcome: TrainOutcome) -> str:
    """Where a completed run saved its model (rich text), or which model it applied.

    Parameters
    ----------
    outcome : TrainOutcome

    Returns
    -------
    str
        Empty when a training run saved nothing.
    """
    name = verifier_name(outcome.verification.model)
    if "model" in outcome.paths:
        return (f"Saved {escape_html(str(outcome.paths['model']))} (with training_log.csv "
                f"and training.png); {escape_html(name)}")
    if not outcome.job.train:
        return f"Model applied: {escape_html(str(outcome.job.init))} ({escape_html(name)})"
    return ""


def cancelled_text(outcome: TrainOutcome | None) -> str:
    """The status line after a cancelled run: which model is kept.

    Parameters
    ----------
    outcome : TrainOutcome or None
        ``None`` when the run was cancelled before any result.

    Returns
    -------
    str
        Plain text.
    """
    if outcome is None:
        return "Cancelled before any result; the catalogue is unchanged."
    n = outcome.completed_epochs
    saved = outcome.paths.get("model")
    if n:
        kept = f"the model of epoch {n} is kept" + (f" and saved to {saved}" if saved else "")
    else:
        kept = "no epoch completed, so the starting model is kept"
    return f"Cancelled after {n} completed epoch(s): {kept}. The catalogue is unchanged."
