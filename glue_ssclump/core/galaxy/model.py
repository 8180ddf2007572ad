"""Faster R-CNN detectors (torchvision) and their checkpoints.

Two architectures, both torchvision's :class:`~torchvision.models.detection.FasterRCNN`
with 3 classes (0 background, 1 clump, 2 odd clump) and no pretrained weights (nothing
can be downloaded here; every model is trained from scratch on synthetic galaxies):

``"mobilenet_v3_fpn"`` (default, CPU-sized)
    torchvision's MobileNetV3-Large feature stages up to stride 16, with an FPN
    (64 channels) on the stride-4, 8 and 16 stages: clumps are a PSF across (3-12 px),
    smaller than torchvision's ``fasterrcnn_mobilenet_v3_large_fpn`` sees (its FPN starts
    at stride 16 and it upscales to 800 px).  Square anchors of 6-80 px, a 256-wide box
    head, no resizing (the network sees the image's own pixels).
``"resnet50_fpn"`` (the paper's)
    ``fasterrcnn_resnet50_fpn`` as Popp et al. used it: default anchors 32-512 px,
    ratios 0.5 / 1 / 2, images upscaled to ``min_size`` 800.  Too slow to train on a CPU;
    also what the authors' ``nn.DataParallel`` checkpoints load into.

Checkpoint: a ``torch.save`` dictionary read with ``weights_only=True``::

    {"format": "glue-ssclump-galaxy-checkpoint", "format_version": 1,
     "arch": "mobilenet_v3_fpn", "state_dict": {... float16 ...}, "metadata": {...}}

:func:`load_galaxy_checkpoint` also takes a bare ``state_dict`` (or one under
``"state_dict"`` / ``"model_state_dict"`` / ``"model"``), with or without the
``module.`` prefixes ``nn.DataParallel`` adds: the architecture is recognised from
the weight names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from ...version import __version__
from ..device import resolve_device
from .image import GalaxyError

__all__ = [
    "GalaxyModel", "build_detector", "save_galaxy_checkpoint", "load_galaxy_checkpoint",
    "load_default_model", "DEFAULT_MODEL_PATH", "ARCHS", "DEFAULT_ARCH", "NUM_CLASSES",
]

FORMAT = "glue-ssclump-galaxy-checkpoint"
FORMAT_VERSION = 1
NUM_CLASSES = 3
DEFAULT_ARCH = "mobilenet_v3_fpn"
ARCHS = ("mobilenet_v3_fpn", "resnet50_fpn")
DEFAULT_MODEL_PATH = Path(__file__).resolve().parents[2] / "data" / "galaxy_default.pt"

_RETRAIN = "retrain it (ssclump galaxy train) or pass a checkpoint saved by glue-ssclump"


@dataclass
class GalaxyModel:
    """A detector and what is known about it.

    Attributes
    ----------
    net : torchvision FasterRCNN
        In eval mode after loading.
    arch : str
        One of :data:`ARCHS`.
    metadata : dict
        Training configuration, metrics, versions (plain types).
    """

    net: nn.Module
    arch: str = DEFAULT_ARCH
    metadata: dict = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def to(self, device: str | torch.device) -> GalaxyModel:
        self.net.to(resolve_device(device))
        return self


class _NoResizeTransform(GeneralizedRCNNTransform):
    """torchvision's GeneralizedRCNNTransform without the resize: the detector keeps the
    image's pixel scale, which the PSF-sized anchors are made for."""

    def resize(self, image, target=None):  # type: ignore[override]
        return image, target


def _mobilenet_fpn() -> nn.Module:
    from torchvision.models import mobilenet_v3_large
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.ops import MultiScaleRoIAlign

    # plain BatchNorm (not torchvision's frozen one): the weights start from scratch
    features = mobilenet_v3_large(weights=None, norm_layer=nn.BatchNorm2d).features
    backbone = BackboneWithFPN(features, return_layers={"3": "0", "6": "1", "12": "2"},
                               in_channels_list=[24, 40, 112], out_channels=64)
    # BackboneWithFPN adds a max-pooled stride-32 level ("pool"): 4 anchor levels
    anchors = AnchorGenerator(sizes=((6, 10), (14, 20), (28, 40), (56, 80)),
                              aspect_ratios=((1.0,),) * 4)
    roi_pool = MultiScaleRoIAlign(featmap_names=["0", "1", "2"], output_size=7,
                                  sampling_ratio=2)
    net = FasterRCNN(
        backbone, num_classes=None, rpn_anchor_generator=anchors, box_roi_pool=roi_pool,
        box_head=TwoMLPHead(64 * 7 * 7, 256), box_predictor=FastRCNNPredictor(256, NUM_CLASSES),
        min_size=200, max_size=4096,
        # a galaxy holds a handful of clumps: far fewer proposals than COCO's defaults
        rpn_pre_nms_top_n_train=300, rpn_post_nms_top_n_train=150,
        rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=100,
        rpn_batch_size_per_image=128, box_batch_size_per_image=64,
        box_score_thresh=0.05, box_nms_thresh=0.5, box_detections_per_img=50,
    )
    net.transform = _NoResizeTransform(200, 4096, net.transform.image_mean,
                                       net.transform.image_std)
    return net


def _resnet50_fpn(frozen_bn: bool = False) -> nn.Module:
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    from torchvision.ops.misc import FrozenBatchNorm2d

    # the authors' ImageNet / Zoobot-initialised models have frozen BatchNorm
    norm = FrozenBatchNorm2d if frozen_bn else nn.BatchNorm2d
    backbone = resnet_fpn_backbone(backbone_name="resnet50", weights=None, norm_layer=norm,
                                   trainable_layers=5)
    return FasterRCNN(backbone, num_classes=NUM_CLASSES)


def build_detector(arch: str = DEFAULT_ARCH, frozen_bn: bool = False) -> GalaxyModel:
    """A new, untrained detector (random weights; nothing is downloaded).

    Parameters
    ----------
    arch : str
        ``"mobilenet_v3_fpn"`` (default) or ``"resnet50_fpn"`` (the paper's).
    frozen_bn : bool
        ResNet50 only: torchvision's FrozenBatchNorm2d, as in the authors' checkpoints.
    """
    if arch == "mobilenet_v3_fpn":
        net = _mobilenet_fpn()
    elif arch == "resnet50_fpn":
        net = _resnet50_fpn(frozen_bn)
    else:
        raise GalaxyError(f"unknown detector architecture {arch!r}; use one of {ARCHS}")
    return GalaxyModel(net=net, arch=arch, metadata={"arch": arch})


def save_galaxy_checkpoint(path: str | os.PathLike, model: GalaxyModel,
                           metadata: dict | None = None, half: bool = True) -> Path:
    """Write ``model`` (weights in float16 when ``half``) and metadata to one file, atomically.

    Parameters
    ----------
    path : str or PathLike
        Destination ``*.pt``.
    model : GalaxyModel
        The detector.
    metadata : dict, optional
        Plain types only (str, int, float, bool, None, lists, dicts): the file is read
        with ``weights_only=True``.
    half : bool
        Store floating-point weights as float16 (half the size; they are cast back to
        float32 on loading: detections agree with the float32 model to ~1e-3 in score).
    """
    import torchvision

    from ..atomic import write_atomic
    from ..checkpoint import _plain

    meta = _plain({**model.metadata, **(metadata or {})}, "metadata")
    meta.update(arch=model.arch, package_version=__version__,
                torch_version=str(torch.__version__),
                torchvision_version=str(torchvision.__version__),
                saved_utc=datetime.now(UTC).isoformat(timespec="seconds"),
                dtype="float16" if half else "float32")
    state = {}
    for k, v in model.net.state_dict().items():
        v = v.detach().cpu().clone()
        state[k] = v.half() if half and v.is_floating_point() else v
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "arch": model.arch,
               "state_dict": state, "metadata": meta}
    return write_atomic(path, lambda tmp: torch.save(payload, tmp))


def _read(path: Path) -> Any:
    if not path.exists():
        raise GalaxyError(f"model file {path} does not exist; check the path")
    if path.is_dir():
        raise GalaxyError(f"model file {path} is a folder; give the .pt file inside it")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        text = str(exc)
        if "Unsupported global" in text:
            raise GalaxyError(
                f"{path} holds pickled Python objects (a whole model, not its weights); "
                "refused for safety - save model.state_dict() instead and load that"
            ) from exc
        raise GalaxyError(
            f"{path} ({path.stat().st_size} bytes) is not a readable PyTorch file "
            f"({type(exc).__name__}); it is corrupted or truncated - copy it again or "
            f"{_RETRAIN}"
        ) from exc


def _strip_prefix(state: dict) -> dict:
    if state and all(isinstance(k, str) and k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def _guess_arch(state: dict) -> str | None:
    if any(k.startswith("backbone.body.layer4.") for k in state):
        return "resnet50_fpn"
    if any(k.startswith("backbone.body.12.") for k in state):
        return "mobilenet_v3_fpn"
    return None


def _unwrap(obj: Any, path: Path) -> tuple[dict, str | None, dict]:
    """(state_dict, arch or None, metadata) from any of the accepted layouts."""
    if not isinstance(obj, dict):
        raise GalaxyError(f"{path} is a PyTorch file but holds no weights dictionary; {_RETRAIN}")
    if obj.get("format") == FORMAT:
        version = obj.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise GalaxyError(
                f"{path} uses galaxy checkpoint format {version!r}; this glue-ssclump reads "
                f"<= {FORMAT_VERSION} - upgrade glue-ssclump"
            )
        state, meta = obj.get("state_dict"), obj.get("metadata") or {}
        if not isinstance(state, dict) or not isinstance(meta, dict):
            raise GalaxyError(f"{path} is damaged: weights or metadata missing; {_RETRAIN}")
        return state, obj.get("arch"), dict(meta)
    if obj.get("format") is not None:
        raise GalaxyError(
            f"{path} is a {obj.get('format')!r} file, not a galaxy detector; for SS-3D-Clump "
            "models use `ssclump verify`"
        )
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise GalaxyError(
            f"{path} is a PyTorch file but not a Faster R-CNN state_dict; {_RETRAIN}"
        )
    return obj, None, {"source": "external state_dict"}


def load_galaxy_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu"
                           ) -> GalaxyModel:
    """Load a detector: a glue-ssclump galaxy checkpoint or a torchvision state_dict.

    Parameters
    ----------
    path : str or PathLike
        A file of :func:`save_galaxy_checkpoint`, or a (``nn.DataParallel``) state_dict
        of one of :data:`ARCHS` with 3 classes, e.g. the authors' ``fasterrcnn_resnet50_fpn``.
    device : str or torch.device
        Where to put the network.

    Returns
    -------
    GalaxyModel
        In eval mode, weights in float32.

    Raises
    ------
    GalaxyError
        Missing, truncated or foreign file; pickled objects (refused, never run); an
        unknown architecture; another number of classes; wrong or missing weights;
        NaN / infinite weights.
    """
    path = Path(path)
    state, arch, meta = _unwrap(_read(path), path)
    state = _strip_prefix(dict(state))
    guessed = _guess_arch(state)
    arch = arch or guessed
    if arch not in ARCHS:
        raise GalaxyError(
            f"{path} holds weights of an unknown network (architecture {arch!r}); this "
            f"version builds {ARCHS}; {_RETRAIN}"
        )
    cls = state.get("roi_heads.box_predictor.cls_score.weight")
    if isinstance(cls, torch.Tensor) and cls.shape[0] != NUM_CLASSES:
        raise GalaxyError(
            f"{path} predicts {cls.shape[0]} classes; a clump detector has 3 (background, "
            "clump, odd clump) - retrain the box predictor with 3 classes"
        )
    frozen = arch == "resnet50_fpn" and not any(k.endswith("num_batches_tracked") for k in state)
    model = build_detector(arch, frozen_bn=frozen)
    expected = model.net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
             for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            parts.append("wrong shapes (" + "; ".join(wrong[:3]) + ")")
        if missing:
            parts.append(f"missing {missing[:3]}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:3]}")
        raise GalaxyError(f"{path} does not match the {arch!r} detector: {', '.join(parts)}; "
                          f"{_RETRAIN}")
    bad = [k for k, v in state.items()
           if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise GalaxyError(f"{path} has NaN or infinite weights in {bad[:3]}; retrain the model")
    state = {k: (v.to(expected[k].dtype) if v.is_floating_point() else v)
             for k, v in state.items()}
    model.net.load_state_dict(state, strict=True)
    model.metadata = {**meta, "arch": arch, "path": str(path)}
    model.net.to(resolve_device(device))
    model.net.eval()
    return model


def load_default_model(device: str | torch.device = "auto") -> GalaxyModel:
    """The shipped detector (``glue_ssclump/data/galaxy_default.pt``), trained on synthetic
    galaxies by ``ssclump galaxy train --default``."""
    if not DEFAULT_MODEL_PATH.exists():
        raise GalaxyError(
            f"the default galaxy model {DEFAULT_MODEL_PATH} is missing; rebuild it with "
            "`ssclump galaxy train --default` or pass a checkpoint"
        )
    return load_galaxy_checkpoint(DEFAULT_MODEL_PATH, device=device)
