"""Fuzz the checkpoint reader: random bytes, truncated or damaged zips, foreign PyTorch
files, NaN / inf weights, tensors of another network (the other architecture's shapes)
and damaged metadata. Each ends in a model or a CheckpointError naming the fix; through
``ssclump verify --init`` in exit 2 with one line.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from fuzz import Failures, run_case
from fuzz.cubes import valid_cube_bytes

from glue_ssclump.cli import main
from glue_ssclump.core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from glue_ssclump.core.model import build_model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A valid checkpoint and its payload."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_checkpoint(path, build_model(), {"note": "fuzz"})
    return path, torch.load(path, map_location="cpu", weights_only=True)


def _payload_cases(payload: dict) -> dict[str, object]:
    """Edited copies of a valid payload (saved with torch.save)."""
    state = payload["state_dict"]
    first = next(k for k, v in state.items() if v.is_floating_point() and v.ndim == 5)

    def edit(**changes):
        out = {**payload, **changes}
        return out

    def state_with(key, value):
        return edit(state_dict={**state, key: value})

    nan = state[first].clone()
    nan.view(-1)[0] = float("nan")
    inf = state[first].clone()
    inf.view(-1)[-1] = float("inf")
    stem = state[first]
    # The other architecture in shape: a stem that takes two input channels (cube +
    # context), as a context network's checkpoint holds; its recorded arch is this one.
    two_channels = torch.cat([stem, stem], dim=1)
    meta = payload["metadata"]
    return {
        "NaN weight": state_with(first, nan),
        "inf weight": state_with(first, inf),
        "other architecture (2-channel stem)": state_with(first, two_channels),
        "other architecture name": edit(metadata={**meta, "arch_version": "unet-9"}),
        "other input size": edit(metadata={**meta, "input_size": 64}),
        "other normalisation": edit(metadata={**meta, "normalisation": "zscore"}),
        "tensor of another shape": state_with(first, stem[:, :, :2]),
        "weight missing": edit(state_dict={k: v for k, v in state.items() if k != first}),
        "unexpected weight": state_with("extra.weight", torch.zeros(3)),
        "weight not a tensor": state_with(first, [1.0, 2.0]),
        "metadata not a dict": edit(metadata=[1, 2]),
        "state_dict not a dict": edit(state_dict="weights"),
        "no format": {k: v for k, v in payload.items() if k != "format"},
        "other format": edit(format="keras"),
        "newer format version": edit(format_version=99),
        "format version as text": edit(format_version="1"),
        "dropout 2": edit(model_kwargs={"dropout": 2.0}),
        "dropout text": edit(model_kwargs={"dropout": "half"}),
        "bare state_dict": dict(state),
        "a list": [1, 2, 3],
        "a tensor": torch.zeros(3),
        "None": None,
        "an empty dict": {},
    }


def _files(saved_path: Path, payload: dict, folder: Path,
           rng: np.random.Generator) -> list[tuple[str, str, Path]]:
    raw = saved_path.read_bytes()
    out = []

    def put(kind, name, content):
        path = folder / f"c{len(out)}.pt"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            torch.save(content, path)
        out.append((kind, name, path))

    put("checkpoint: valid", "valid", raw)
    for name, content in _payload_cases(payload).items():
        put("checkpoint: contents", name, content)
    for n in sorted({0, 1, 20, 100, 1000, len(raw) - 1}
                    | {int(x) for x in rng.integers(1, len(raw), 24)}):
        put("checkpoint: truncated zip", f"cut at {n} of {len(raw)} B", raw[:n])
    for i in range(15):
        size = int(rng.integers(1, 20000))
        put("checkpoint: random bytes", f"random {i} ({size} B)",
            bytes(rng.integers(0, 256, size, np.uint8)))
    for i in range(10):
        buf = bytearray(raw)
        # Flip bytes near the end, where the zip's central directory lives.
        for pos in rng.integers(max(0, len(raw) - 4000), len(raw), 4):
            buf[int(pos)] = int(rng.integers(0, 256))
        put("checkpoint: damaged zip", f"directory flips {i}", bytes(buf))
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        zf.writestr("readme.txt", "not a model")
    put("checkpoint: damaged zip", "an unrelated zip", zbuf.getvalue())
    put("checkpoint: damaged zip", "a FITS cube", valid_cube_bytes())
    put("checkpoint: damaged zip", "text", b"weights go here\n")
    (folder / "a_folder.pt").mkdir()
    out.append(("checkpoint: paths", "a folder", folder / "a_folder.pt"))
    out.append(("checkpoint: paths", "no such file", folder / "missing.pt"))
    if hasattr(os, "mkfifo"):  # reading a pipe would block: it must be refused unread
        os.mkfifo(folder / "pipe.pt")
        out.append(("checkpoint: paths", "a named pipe", folder / "pipe.pt"))
    return out


def test_checkpoint_fuzz(saved, tmp_path, fuzz_tally):
    path, payload = saved
    failures = Failures()
    files = _files(path, payload, tmp_path, np.random.default_rng(0))
    outcomes = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for kind, name, p in files:
            outcomes[name] = run_case(fuzz_tally, failures, kind, name,
                                      lambda q=p: load_checkpoint(q))
    failures.check()
    assert outcomes["valid"][0] == "result"
    for name, match in [("NaN weight", "NaN or infinite"), ("inf weight", "NaN or infinite"),
                        ("other architecture (2-channel stem)", "does not match"),
                        ("other architecture name", "architecture"),
                        ("cut at 1000 of", "truncated"), ("a folder", "folder")]:
        key = next(k for k in outcomes if k.startswith(name))
        outcome, exc = outcomes[key]
        assert isinstance(exc, CheckpointError) and match in str(exc), (key, exc)
    for name, (outcome, value) in outcomes.items():
        if outcome == "result":  # a model that loaded has finite weights
            model, _ = value
            assert all(torch.isfinite(v).all() for v in model.state_dict().values()
                       if v.is_floating_point()), name


def test_cli_verify_with_bad_checkpoints(saved, tmp_path, capsys, fuzz_tally):
    """``ssclump verify --init BAD.pt``: exit 2, one line, the catalogue untouched."""
    path, payload = saved
    cube = tmp_path / "cube.fits"
    cube.write_bytes(valid_cube_bytes())
    out = tmp_path / "det"
    logging.disable(logging.WARNING)
    try:
        assert main(["detect", str(cube), "--out", str(out), "--quiet", "--rms", "0.1"]) == 0
        before = (out / "catalog.fits").read_bytes()
        (tmp_path / "f").mkdir()
        files = _files(path, payload, tmp_path / "f", np.random.default_rng(5))
        failures = Failures()
        picked = [f for f in files if f[1] in (
            "NaN weight", "other architecture (2-channel stem)", "bare state_dict",
            "a folder", "no such file", "an unrelated zip")] + [
            f for f in files if f[0] == "checkpoint: truncated zip"][::6]
        for _, name, p in picked:
            capsys.readouterr()
            outcome, rc = run_case(
                fuzz_tally, failures, "ssclump verify --init", name,
                lambda q=p: main(["verify", str(out), "--cube", str(cube), "--init", str(q),
                                  "--verify-only", "--quiet", "--device", "cpu"]),
                classify=lambda r: {2: "message"}.get(r, "traceback"))
            err = [ln for ln in capsys.readouterr().err.splitlines() if "error:" in ln]
            if rc != 2 or len(err) != 1:
                failures.add("ssclump verify --init", name, f"exit {rc}, error lines {err}")
            if (out / "catalog.fits").read_bytes() != before:
                fuzz_tally.add("ssclump verify --init", "partial output")
                failures.add("ssclump verify --init", name, "catalog.fits changed")
        failures.check()
    finally:
        logging.disable(logging.NOTSET)
    with contextlib.suppress(OSError):
        assert not [p for p in out.iterdir() if p.name.startswith(".")]
