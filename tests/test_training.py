"""SS-3D-Clump training loop: learning, determinism, cancellation, validation, logs, plot."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from astropy.table import Table

from glue_ssclump.core import training
from glue_ssclump.core.checkpoint import CheckpointError, save_checkpoint
from glue_ssclump.core.model import SSClumpNet, build_model
from glue_ssclump.core.progress import Progress
from glue_ssclump.core.report import _pick_panels, plot_training
from glue_ssclump.core.samples import ArraySamples
from glue_ssclump.core.training import (
    LOG_COLUMNS,
    EpochRecord,
    TrainConfig,
    balanced_cross_entropy,
    history_to_table,
    load_initial_model,
    train,
    write_history_csv,
)

# One worker runs the whole module so the trained fixture is built once.
pytestmark = pytest.mark.xdist_group(name="training")

N_PER_CLASS = 10
N_SEEDS = 5  # per class


def synthetic_samples(n_per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Compact bright Gaussian blobs (clumps) vs faint edge-to-edge streaks, in [0, 1]."""
    rng = np.random.default_rng(seed)
    v, y, x = np.indices((30, 30, 30), dtype=np.float32)
    axes = (v, y, x)
    cubes, labels = [], []
    for k in range(2 * n_per_class):
        noise = rng.normal(0.0, 0.08, (30, 30, 30)).astype(np.float32)
        if k % 2 == 0:
            c = 14.5 + rng.uniform(-3, 3, 3)
            s = rng.uniform(2.0, 3.5)
            r2 = (v - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2
            cube = np.exp(-0.5 * r2 / s**2) + noise
        else:
            along = (k // 2) % 3
            a, b = (axes[i] for i in range(3) if i != along)
            c = rng.uniform(5, 25, 2)
            cube = 0.6 * np.exp(-0.5 * ((a - c[0]) ** 2 + (b - c[1]) ** 2) / 1.5**2) + noise
        cubes.append((cube - cube.min()) / (cube.max() - cube.min()))
        labels.append(1 - k % 2)
    return np.stack(cubes)[:, None].astype(np.float32), np.asarray(labels)


def split(labels: np.ndarray, n_seeds: int = N_SEEDS) -> tuple[np.ndarray, tuple]:
    """Seed labels (first ``n_seeds`` of each class) and the rest as held-out set."""
    seeds = np.full(labels.size, -1)
    for c in (0, 1):
        seeds[np.flatnonzero(labels == c)[:n_seeds]] = c
    held = np.flatnonzero(seeds < 0)
    return seeds, (held, labels[held])


def small_config(**kw) -> TrainConfig:
    base = dict(epochs=2, passes=2, batch_size=8, infer_batch_size=32, device="cpu",
                num_threads=2)
    base.update(kw)
    return TrainConfig(**base)


def state_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def comparable(record: EpochRecord) -> dict:
    d = record.to_dict()
    d.pop("seconds")
    return d


@pytest.fixture(scope="module")
def data():
    x, y = synthetic_samples(N_PER_CLASS)
    seeds, heldout = split(y)
    return ArraySamples(x), y, seeds, heldout


def seeded_model(seed: int = 0) -> SSClumpNet:
    """The network ``train(model=None)`` builds for ``config.seed == seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model()


@pytest.fixture(scope="module")
def trained(data):
    """One 2-epoch run; the weights after each epoch are recorded by ``on_epoch``."""
    samples, _, seeds, heldout = data
    model = seeded_model(0)
    states, fractions = [], []
    progress = Progress(lambda f, m: fractions.append(f), min_interval=0.0)
    result = train(samples, seeds, small_config(), model=model, heldout=heldout,
                   progress=progress,
                   on_epoch=lambda r: states.append(copy.deepcopy(model.state_dict())))
    return result, states, fractions


# -- learning ---------------------------------------------------------------------------

def test_learns_the_synthetic_classes(trained, data):
    result, _, _ = trained
    samples, _, seeds, (held, held_y) = data
    assert not result.cancelled
    assert result.completed_epochs == 2 and [r.epoch for r in result.history] == [1, 2]
    last = result.history[-1]
    assert last.f1 >= 0.9 and last.accuracy >= 0.9 and last.auc >= 0.95
    # The loss of the second epoch is below the first (the pseudo-labels are learnt).
    assert result.history[1].loss < result.history[0].loss
    for rec in result.history:
        assert rec.n_selected >= 2 * N_SEEDS
        assert sum(rec.selected_sizes) == rec.n_selected
        assert sum(rec.cluster_sizes) == len(samples)
        assert 0.0 <= rec.nmi_prev <= 1.0 and 0 <= rec.n_reassigned <= len(samples)
        assert rec.hist_all.sum() == len(samples)
        assert rec.hist_pos.sum() == np.sum(held_y == 1)
        assert rec.hist_neg.sum() == np.sum(held_y == 0)
    assert result.initial is not None and result.initial.epoch == 0
    # The seeds are pinned: their pseudo-labels are their labels.
    known = seeds >= 0
    assert np.array_equal(result.pseudo_labels[known], seeds[known])
    assert not result.model.training


def test_progress_is_monotone_and_finishes(trained):
    _, _, fractions = trained
    assert len(fractions) > 10
    assert np.all(np.diff(fractions) >= -1e-12)
    assert fractions[-1] == pytest.approx(1.0)


def test_training_is_deterministic(trained, data):
    result, _, _ = trained
    samples, _, seeds, heldout = data
    rng_before = torch.random.get_rng_state()
    # model=None builds the same seeded network the fixture passed in.
    again = train(samples, seeds, small_config(), heldout=heldout)
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # caller's RNG untouched
    assert [comparable(r) for r in again.history] == [comparable(r) for r in result.history]
    assert state_equal(again.model.state_dict(), result.model.state_dict())


# -- cancellation -----------------------------------------------------------------------

def test_cancel_mid_epoch_keeps_last_completed_epoch(trained, data):
    _, states, _ = trained
    samples, _, seeds, heldout = data
    seen = {"epoch2_batches": 0}

    def callback(fraction: float, message: str) -> None:
        if message.startswith("epoch 2/2: training pass"):
            seen["epoch2_batches"] += 1
            if seen["epoch2_batches"] == 2:
                progress.cancel()

    progress = Progress(callback, min_interval=0.0)
    result = train(samples, seeds, small_config(), heldout=heldout, progress=progress)
    assert seen["epoch2_batches"] == 2  # epoch 2 had changed the weights before the cancel
    assert result.cancelled and result.completed_epochs == 1 and len(result.history) == 1
    # Same seed -> the uncancelled run's epoch-1 weights, not its epoch-2 ones.
    assert state_equal(result.model.state_dict(), states[0])
    assert not state_equal(result.model.state_dict(), states[1])


def test_cancel_before_first_epoch_restores_the_start(data):
    samples, _, seeds, _ = data
    model = seeded_model(3)
    start = copy.deepcopy(model.state_dict())
    progress = Progress()
    progress.cancel()
    result = train(samples, seeds, small_config(), model=model, progress=progress)
    assert result.cancelled and result.completed_epochs == 0 and result.history == []
    assert result.model is model
    assert state_equal(model.state_dict(), start)


# -- validation -------------------------------------------------------------------------

def test_empty_class_is_refused(data):
    samples, _, seeds, _ = data
    only_clumps = np.where(seeds == 0, -1, seeds)
    with pytest.raises(ValueError, match="Label at least one candidate of each class"):
        train(samples, only_clumps, small_config())
    with pytest.raises(ValueError, match=r"not clump \(0\)"):
        train(samples, only_clumps, small_config())


def test_heldout_overlapping_seeds_is_refused(data):
    samples, y, seeds, (held, held_y) = data
    first_seed = int(np.flatnonzero(seeds >= 0)[0])
    bad = (np.append(held, first_seed), np.append(held_y, y[first_seed]))
    with pytest.raises(ValueError, match="also seeds"):
        train(samples, seeds, small_config(), heldout=bad)


@pytest.mark.parametrize("bad, match", [
    (np.full(3, -1), "one entry per candidate"),
    ("twos", "may only hold"),
    ("floats", "integers"),
])
def test_malformed_seeds_are_refused(data, bad, match):
    samples, _, seeds, _ = data
    if isinstance(bad, str) and bad == "twos":
        bad = np.where(seeds == 1, 2, seeds)
    elif isinstance(bad, str):
        bad = seeds.astype(float) + 0.5
    with pytest.raises(ValueError, match=match):
        train(samples, bad, small_config())


def test_few_seeds_warn(data):
    samples, y, _, _ = data
    seeds, _ = split(y, n_seeds=2)
    progress = Progress()
    progress.cancel()  # only the validation matters here
    with pytest.warns(UserWarning, match="only 2 seed"):
        result = train(samples, seeds, small_config(), progress=progress)
    assert result.cancelled
    seeds5, _ = split(y, n_seeds=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train(samples, seeds5, small_config(), progress=progress)


# -- pieces -----------------------------------------------------------------------------

def test_balanced_cross_entropy_gives_each_class_half():
    torch.manual_seed(0)
    logits = torch.randn(10, 2)
    target = torch.tensor([1, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    per = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    expected = 0.5 * per[target == 0].mean() + 0.5 * per[target == 1].mean()
    assert balanced_cross_entropy(logits, target).item() == pytest.approx(expected.item())
    assert balanced_cross_entropy(logits, target, balanced=False).item() == pytest.approx(
        per.mean().item())
    one_class = torch.zeros(10, dtype=torch.int64)
    assert balanced_cross_entropy(logits, one_class).item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits, one_class).item())


def test_config_defaults_and_round_trip():
    sgd = TrainConfig()
    assert (sgd.optimizer, sgd.lr, sgd.select_ratio, sgd.passes) == ("sgd", 0.005, 0.4, 5)
    assert TrainConfig(optimizer="adam").lr == 0.001
    assert TrainConfig(optimizer="Adam", lr=0.01).lr == 0.01
    cfg = TrainConfig(epochs=7, optimizer="adam", seed=4, class_balanced=False)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.warns(UserWarning, match="unknown"):
        TrainConfig.from_dict({**cfg.to_dict(), "future_option": 1})
    for bad in (dict(optimizer="rmsprop"), dict(epochs=0), dict(select_ratio=0.0),
                dict(lr=-1.0), dict(momentum=1.0)):
        with pytest.raises(ValueError):
            TrainConfig(**bad)


def test_history_table_and_csv(trained, tmp_path):
    result, _, _ = trained
    table = history_to_table(result.history)
    assert tuple(table.colnames) == LOG_COLUMNS
    assert list(table["epoch"]) == [1, 2]
    assert np.allclose(table["f1"], [r.f1 for r in result.history])
    path = write_history_csv(result.history, tmp_path / "logs" / "training_log.csv")
    back = Table.read(path, format="ascii.csv")
    assert tuple(back.colnames) == LOG_COLUMNS
    assert np.allclose(back["loss"], table["loss"])
    assert np.array_equal(back["n_reassigned"], table["n_reassigned"])
    again = [EpochRecord.from_dict(r.to_dict()) for r in result.history]
    assert [comparable(r) for r in again] == [comparable(r) for r in result.history]


def test_load_initial_model(trained, tmp_path, monkeypatch):
    result, _, _ = trained
    assert isinstance(load_initial_model("scratch", "cpu"), SSClumpNet)
    path = save_checkpoint(tmp_path / "m.pt", result.model, {"note": "test"})
    loaded = load_initial_model(path, "cpu")
    assert state_equal(loaded.state_dict(), result.model.state_dict())
    monkeypatch.setattr(training, "DEFAULT_CHECKPOINT", tmp_path / "absent.pt")
    with pytest.raises(CheckpointError, match="ssclump train-default"):
        load_initial_model("default", "cpu")
    with pytest.raises(CheckpointError):
        load_initial_model(tmp_path / "nope.pt", "cpu")


# -- report -----------------------------------------------------------------------------

def _png_ok(path, min_size: int = 20_000) -> bool:
    return (path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            and path.stat().st_size > min_size)


def test_plot_training_with_heldout(trained, tmp_path):
    result, _, _ = trained
    path = plot_training(result.history, tmp_path / "out" / "training.png",
                         initial=result.initial, title="synthetic")
    assert _png_ok(path)


def test_plot_training_without_heldout(tmp_path):
    rng = np.random.default_rng(0)
    history = []
    for e in range(1, 7):
        counts = rng.integers(0, 50, training.HIST_BINS)
        history.append(EpochRecord(
            epoch=e, loss=1.0 / e, n_selected=400, nmi_prev=min(1.0, 0.5 + e / 10),
            n_reassigned=max(0, 40 - 8 * e), cluster_sizes=(600, 400),
            selected_sizes=(240, 160), seconds=1.0, hist_all=counts))
    path = plot_training(history, tmp_path / "training.png", dpi=60)
    assert _png_ok(path, min_size=5_000)
    with pytest.raises(ValueError, match="empty"):
        plot_training([], tmp_path / "empty.png")


def test_histogram_panels_are_thinned_evenly():
    records = list(range(1, 71))
    picked = _pick_panels(records, 16)
    assert len(picked) == 16 and picked[0] == 1 and picked[-1] == 70
    assert np.all(np.diff(picked) > 0)
    assert _pick_panels(records[:5], 16) == records[:5]


def test_divergence_is_reported_and_the_model_reset(data):
    full, _, seeds, _ = data
    assert np.all(seeds[:10] >= 0)
    samples, seeds = ArraySamples(full.get(np.arange(12))), seeds[:12]  # keep it cheap
    model = seeded_model(0)
    start = copy.deepcopy(model.state_dict())
    with pytest.raises(FloatingPointError, match="Lower the learning rate"):
        train(samples, seeds, small_config(epochs=1, passes=1, lr=1e12), model=model)
    assert state_equal(model.state_dict(), start)
    broken = seeded_model(0)
    with torch.no_grad():
        broken.fc_out.bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="starting model"):
        train(samples, seeds, small_config(), model=broken)
