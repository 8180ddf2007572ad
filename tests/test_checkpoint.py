"""Checkpoint round trip and every way a file can be unusable."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glue_ssclump.core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from glue_ssclump.core.model import ARCH_VERSION, build_model
from glue_ssclump.version import __version__


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # shared cores: see tests/test_model.py
    yield
    torch.set_num_threads(n)


@pytest.fixture
def trained(tmp_path):
    torch.manual_seed(0)
    model = build_model()
    # Move BatchNorm running statistics away from their defaults so the round trip
    # has to carry buffers too.
    model.train()
    with torch.no_grad():
        model(torch.rand(4, 1, 30, 30, 30))
    model.eval()
    path = tmp_path / "model.pt"
    meta = {
        "training": {"epochs": 12, "lr": 0.003, "batch_size": 1000, "select_ratio": 0.4},
        "seeds": {"clump": 187, "not_clump": 40},
        "metrics": {"F1": np.float64(0.955), "history": np.array([0.5, 0.9])},
        "notes": ["HDR", None, True],
    }
    save_checkpoint(path, model, meta)
    return model, path


def _payload(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def test_round_trip_identical_outputs(trained):
    model, path = trained
    loaded, meta = load_checkpoint(path)
    assert not loaded.training
    x = torch.rand(3, 1, 30, 30, 30, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    assert meta["arch_version"] == ARCH_VERSION
    assert meta["input_size"] == 30
    assert meta["normalisation"] == "minmax"
    assert meta["package_version"] == __version__
    assert meta["torch_version"] == torch.__version__
    assert meta["training"]["epochs"] == 12
    assert meta["seeds"] == {"clump": 187, "not_clump": 40}
    assert meta["metrics"]["F1"] == pytest.approx(0.955)
    assert type(meta["metrics"]["F1"]) is float  # numpy converted to plain types
    assert meta["metrics"]["history"] == [0.5, 0.9]
    assert meta["notes"] == ["HDR", None, True]
    assert "saved_utc" in meta
    # no temporary files left next to the checkpoint
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.pt"]


def test_dropout_rate_is_restored(tmp_path):
    model = build_model(dropout=0.3)
    save_checkpoint(tmp_path / "d.pt", model, {})
    loaded, _ = load_checkpoint(tmp_path / "d.pt")
    assert loaded.dropout.p == pytest.approx(0.3)


def test_metadata_must_be_plain(tmp_path):
    with pytest.raises(TypeError, match=r"metadata\['cfg'\]\['fn'\].*function"):
        save_checkpoint(tmp_path / "x.pt", build_model(), {"cfg": {"fn": len}})
    with pytest.raises(TypeError, match="string"):
        save_checkpoint(tmp_path / "x.pt", build_model(), {1: "a"})
    assert not (tmp_path / "x.pt").exists()


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="folder"):
        load_checkpoint(tmp_path)


def test_truncated_file(trained):
    _, path = trained
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupted or truncated"):
        load_checkpoint(path)


def test_corrupted_file(tmp_path):
    path = tmp_path / "garbage.pt"
    path.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(CheckpointError, match="not a readable PyTorch file"):
        load_checkpoint(path)
    text = tmp_path / "notes.pt"
    text.write_text("hello, I am not a model\n")
    with pytest.raises(CheckpointError, match="not a readable PyTorch file"):
        load_checkpoint(text)
    assert issubclass(CheckpointError, ValueError)


def test_bare_state_dict_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "sd.pt"
    torch.save(build_model().state_dict(), path)
    with pytest.raises(CheckpointError, match="not a glue-ssclump checkpoint.*bare state_dict"):
        load_checkpoint(path)
    other = tmp_path / "list.pt"
    torch.save([1, 2, 3], other)
    with pytest.raises(CheckpointError, match="not a glue-ssclump checkpoint"):
        load_checkpoint(other)


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickled_objects_are_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"format": "glue-ssclump-checkpoint", "payload": _Evil()}, path)
    with pytest.raises(CheckpointError, match="not allowed"):
        load_checkpoint(path)
    assert "must never run" not in capsys.readouterr().out


def test_other_architecture(trained):
    _, path = trained
    payload = _payload(path)
    payload["metadata"]["arch_version"] = "ss3dclump-figure-2"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="architecture 'ss3dclump-figure-2'.*retrain"):
        load_checkpoint(path)


def test_other_input_size_or_normalisation(trained):
    _, path = trained
    payload = _payload(path)
    payload["metadata"]["input_size"] = 32
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="32\\^3"):
        load_checkpoint(path)
    payload["metadata"]["input_size"] = 30
    payload["metadata"]["normalisation"] = "zscore"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="zscore"):
        load_checkpoint(path)


def test_newer_format(trained):
    _, path = trained
    payload = _payload(path)
    payload["format_version"] = 99
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="upgrade"):
        load_checkpoint(path)


def test_wrong_tensor_shape(trained):
    _, path = trained
    payload = _payload(path)
    payload["state_dict"]["fc1.weight"] = torch.zeros(512, 2048)
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"wrong tensor shapes \(fc1.weight: file "
                                              r"\(512, 2048\) vs model \(512, 4096\)"):
        load_checkpoint(path)


def test_missing_and_unexpected_weights(trained):
    _, path = trained
    payload = _payload(path)
    del payload["state_dict"]["conv3.bias"]
    payload["state_dict"]["extra.weight"] = torch.zeros(3)
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="missing weights.*conv3.bias.*unexpected.*extra"):
        load_checkpoint(path)


def test_nan_weights(trained):
    _, path = trained
    payload = _payload(path)
    payload["state_dict"]["fc2.weight"][0, 0] = float("nan")
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="NaN.*fc2.weight"):
        load_checkpoint(path)


def test_overwrite_keeps_a_valid_file(trained):
    model, path = trained
    save_checkpoint(path, model, {"round": 2})
    _, meta = load_checkpoint(path, device="cpu")
    assert meta["round"] == 2
