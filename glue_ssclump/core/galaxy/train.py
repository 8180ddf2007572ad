"""Training a galaxy clump detector on synthetic galaxies (CPU-sized).

The paper trains ImageNet- / Zoobot-initialised ResNet50 models for 120 epochs on eight
A100s.  Here nothing pretrained can be downloaded and the default must train on two
shared CPU cores, so the default recipe is: the small :data:`~.model.DEFAULT_ARCH`
detector from scratch, Adam (learning rate 1e-3 with a linear warm-up and cosine decay,
higher than the paper's 1e-4 because nothing is pretrained), random 128 x 128 px crops of
the 200 x 200 px galaxies (a clump is a PSF across, so crops carry the same information
at 0.4 of the cost) and the paper's random flips plus 90-degree turns.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from astropy.table import Table

from ..device import resolve_device
from ..progress import Progress, ensure_progress
from .image import GalaxyError, GalaxyImage
from .model import DEFAULT_ARCH, GalaxyModel, build_detector
from .synth import synth_galaxies

__all__ = ["TRAIN_HOSTS", "train_detector", "to_tensor", "targets_from_truth", "augment"]


#: host kind the shipped model trains on (and fine-tuning on synthetic galaxies uses)
TRAIN_HOSTS = "mixed"


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """uint8 ``(ny, nx, 3)`` -> float32 ``(3, ny, nx)`` in [0, 1] (torchvision's input)."""
    # a copy: arrays from PIL are read-only, which torch.from_numpy warns about
    return torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1).float().div_(255.0)


def targets_from_truth(truth: Table) -> dict[str, torch.Tensor]:
    """torchvision target dict (``boxes`` x1 y1 x2 y2, ``labels``) from a truth table."""
    if len(truth):
        boxes = np.stack([np.asarray(truth[c], dtype=np.float32)
                          for c in ("x_min", "y_min", "x_max", "y_max")], axis=1)
        labels = np.asarray(truth["class_id"], dtype=np.int64)
    else:
        boxes, labels = np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    return {"boxes": torch.from_numpy(boxes), "labels": torch.from_numpy(labels)}


def augment(img: torch.Tensor, target: dict[str, torch.Tensor], rng: np.random.Generator,
            crop: int | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Random crop (sources whose centre falls inside are kept), flips and 90-degree turns.

    Boxes are in pixel-edge coordinates (x from -0.5 to nx - 0.5), so a flip maps
    ``x -> nx - 1 - x`` on centres and ``[a, b] -> [nx - 1 - b, nx - 1 - a]`` on boxes.
    """
    boxes = target["boxes"].clone()
    labels = target["labels"].clone()
    _, ny, nx = img.shape
    if crop is not None and crop < min(ny, nx):
        # bias the crop towards the galaxy centre, where the sources are
        x0 = int(np.clip(rng.normal((nx - crop) / 2, (nx - crop) / 4), 0, nx - crop))
        y0 = int(np.clip(rng.normal((ny - crop) / 2, (ny - crop) / 4), 0, ny - crop))
        img = img[:, y0:y0 + crop, x0:x0 + crop]
        cx = (boxes[:, 0] + boxes[:, 2]) / 2 - x0
        cy = (boxes[:, 1] + boxes[:, 3]) / 2 - y0
        keep = (cx >= 0) & (cx <= crop - 1) & (cy >= 0) & (cy <= crop - 1)
        boxes = boxes[keep] - torch.tensor([x0, y0, x0, y0], dtype=boxes.dtype)
        labels = labels[keep]
        boxes = boxes.clamp(-0.5, crop - 0.5)
        ny = nx = crop
    if rng.random() < 0.5:  # horizontal flip
        img = img.flip(-1)
        boxes = torch.stack([nx - 1 - boxes[:, 2], boxes[:, 1], nx - 1 - boxes[:, 0],
                             boxes[:, 3]], 1)
    if rng.random() < 0.5:  # vertical flip
        img = img.flip(-2)
        boxes = torch.stack([boxes[:, 0], ny - 1 - boxes[:, 3], boxes[:, 2],
                             ny - 1 - boxes[:, 1]], 1)
    if rng.random() < 0.5:  # transpose (with the flips: all 8 turns and mirrors)
        img = img.transpose(-1, -2)
        boxes = boxes[:, [1, 0, 3, 2]]
    return img.contiguous(), {"boxes": boxes.reshape(-1, 4).contiguous(), "labels": labels}


def _lr_at(step: int, total: int, lr: float, warmup: int) -> float:
    if step < warmup:
        return lr * (step + 1) / warmup
    frac = (step - warmup) / max(total - warmup, 1)
    return lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))


def train_detector(
    images: Iterable[tuple[GalaxyImage, Table]] | None = None,
    *,
    n_train: int = 800,
    seed: int = 0,
    hosts: str = TRAIN_HOSTS,
    arch: str = DEFAULT_ARCH,
    epochs: int = 6,
    batch_size: int = 8,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    crop: int | None = 128,
    warmup: int = 50,
    init: GalaxyModel | None = None,
    device: str | torch.device = "auto",
    progress: Progress | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    checkpoint: str | os.PathLike | None = None,
    stop_after: int | None = None,
) -> tuple[GalaxyModel, list[dict]]:
    """Train a Faster R-CNN clump detector.

    Parameters
    ----------
    images : iterable of (GalaxyImage, truth Table), optional
        Training galaxies with truth (``x_min`` .. ``y_max``, ``class_id``); default
        ``synth_galaxies(n_train, seed)``.
    n_train, seed : int
        Number and seed of the synthetic galaxies when ``images`` is not given (the
        benchmark uses other seeds, so it never sees these).
    hosts : str
        Host kind of those synthetic galaxies: ``"smooth"``, ``"structured"`` or
        ``"mixed"`` (see :func:`~.synth.synth_galaxy`; default :data:`TRAIN_HOSTS`, the
        shipped model's).
    arch : str
        Detector architecture (see :mod:`.model`); ignored with ``init``.
    epochs, batch_size, lr, weight_decay, warmup : training settings (Adam).
    crop : int or None
        Train on random ``crop`` x ``crop`` px crops (None: whole images).
    init : GalaxyModel, optional
        Fine-tune this model instead of starting from scratch.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``.
    progress : Progress, optional
        Reports per batch; cancelling raises :class:`~glue_ssclump.core.progress.Cancelled`
        at the next batch (the partly trained model is discarded).
    on_epoch : callable, optional
        Called with each epoch's history entry.
    checkpoint : path, optional
        Save the model here (atomically) after every epoch, so a long run that is
        stopped still leaves the last completed epoch's model.
    stop_after : int, optional
        Run only the first ``stop_after`` epochs of the ``epochs``-long learning-rate
        schedule (reproduces a run that was stopped there).

    Returns
    -------
    model : GalaxyModel
        In eval mode; ``metadata["training"]`` holds the configuration and history.
    history : list of dict
        Per epoch: ``epoch``, ``loss`` and the four torchvision loss terms (means),
        ``seconds``.
    """
    progress = ensure_progress(progress)
    dev = resolve_device(device)
    rng = np.random.default_rng([seed, 0x7EA1])
    torch.manual_seed(seed)
    t_start = time.perf_counter()

    gen_progress = progress.span(0.0, 0.1, "making training galaxies")
    samples: list[tuple[torch.Tensor, dict[str, torch.Tensor]]] = []
    synthetic = images is None
    if images is None:
        images = synth_galaxies(n_train, seed=seed, host=hosts)
        total_hint: int | None = n_train
    else:
        total_hint = len(images) if isinstance(images, Sequence) else None
    for k, (image, truth) in enumerate(images):
        samples.append((to_tensor(image.rgb), targets_from_truth(truth)))
        if total_hint:
            gen_progress.update((k + 1) / total_hint, f"galaxy {k + 1}/{total_hint}")
        else:
            gen_progress.check()
    if not samples:
        raise GalaxyError("no training galaxies were given")
    t_data = time.perf_counter() - t_start

    model = init if init is not None else build_detector(arch)
    net = model.net.to(dev)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    n_batches = math.ceil(len(samples) / batch_size)
    total_steps = epochs * n_batches
    history: list[dict] = []
    config = {"n_images": len(samples), "synthetic_seed": seed if synthetic else None,
              "hosts": hosts if synthetic else None,
              "epochs": epochs, "batch_size": batch_size, "lr": lr,
              "weight_decay": weight_decay, "crop": crop, "warmup": warmup,
              "optimizer": "Adam", "device": str(dev), "threads": torch.get_num_threads(),
              "stop_after": stop_after}
    step = 0
    train_progress = progress.span(0.1, 1.0)
    for epoch in range(epochs if stop_after is None else min(stop_after, epochs)):
        net.train()
        t0 = time.perf_counter()
        order = rng.permutation(len(samples))
        sums: dict[str, float] = {}
        for b in range(n_batches):
            idx = order[b * batch_size:(b + 1) * batch_size]
            batch = [augment(*samples[i], rng, crop) for i in idx]
            imgs = [im.to(dev) for im, _ in batch]
            tgts = [{k: v.to(dev) for k, v in t.items()} for _, t in batch]
            for group in opt.param_groups:
                group["lr"] = _lr_at(step, total_steps, lr, warmup)
            losses = net(imgs, tgts)
            loss = sum(losses.values())
            if not torch.isfinite(loss):
                raise GalaxyError(
                    f"training diverged (loss {float(loss)} at epoch {epoch + 1}); "
                    "use a smaller learning rate"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            sums["loss"] = sums.get("loss", 0.0) + float(loss.detach())
            train_progress.update(step / total_steps,
                                  f"epoch {epoch + 1}/{epochs} loss {float(loss.detach()):.3f}")
        entry = {"epoch": epoch + 1, **{k: v / n_batches for k, v in sums.items()},
                 "seconds": time.perf_counter() - t0}
        history.append(entry)
        if on_epoch is not None:
            on_epoch(entry)
        model.metadata = {**model.metadata, "arch": model.arch, "training": {
            **config, "epochs_done": epoch + 1, "data_seconds": round(t_data, 1),
            "train_seconds": round(time.perf_counter() - t_start - t_data, 1),
            "history": history}}
        if checkpoint is not None:
            from .model import save_galaxy_checkpoint

            net.eval()
            save_galaxy_checkpoint(checkpoint, model)
    net.eval()
    return model, history
