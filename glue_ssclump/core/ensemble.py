"""The default verifier: the context network and the paper's network voting together.

``arch='ensemble'`` (docs/verifier.md, "The default verifier") scores a candidate's
four-channel sample (:class:`~glue_ssclump.core.context.ContextSamples`) with both
shipped networks - the context network on all four channels, the paper's network on
channel 0, which is the paper's own sample - and adds their logits::

    logit p = logit p_context + PAPER_WEIGHT * logit p_paper + BIAS

Why two networks: the morphology-truth cubes and the SNR-truth cubes call different
candidates real (a compact clump at SNR 3-5 is a clump in the first, not in the
second), and the context network alone over-calls clumps on the SNR-truth presets.
The paper's network, pretrained on SNR-truth cubes, adds the SNR ranking it learned;
the bias moves the cut where the context network over-calls (R > P on every preset).
``PAPER_WEIGHT`` and ``BIAS`` were chosen on the tuning cubes only (morph_hard seeds
50-51, benchmark / diffuse-10 runs 10-11), never on the cubes the tables report.

The ensemble is applied as it is: neither network is trained on the user's labels
(measured: fine-tuning the context network by the paper's loop, or fitting a
calibration on ~20 seeds, lowered F1; docs/verifier.md).  To fine-tune on labels use
``arch='paper'``.
"""

from __future__ import annotations

import torch
from torch import nn

from .network import INPUT_SIZE, SSClumpNet

__all__ = ["BIAS", "ENSEMBLE_ARCH_VERSION", "PAPER_WEIGHT", "EnsembleNet", "verifier_name"]

#: Identifies the ensemble in checkpoints.
ENSEMBLE_ARCH_VERSION = "ss3dclump-ensemble-1"
#: Weight of the paper network's logit (chosen on the tuning cubes).
PAPER_WEIGHT = 0.35
#: Added to the summed logit (chosen on the tuning cubes).
BIAS = -1.25


class EnsembleNet(nn.Module):
    """Context network + paper network, logits summed (module docstring).

    Parameters
    ----------
    context : SSClumpNet
        An ``arch='context'`` network (4 input channels).
    paper : SSClumpNet
        An ``arch='paper'`` network (1 input channel); it sees channel 0.
    paper_weight, bias : float
        The combination; stored in the state dict, so a checkpoint carries them.
    """

    arch = "ensemble"
    arch_version = ENSEMBLE_ARCH_VERSION
    in_channels = 4

    def __init__(self, context: SSClumpNet | None = None, paper: SSClumpNet | None = None,
                 paper_weight: float = PAPER_WEIGHT, bias: float = BIAS) -> None:
        super().__init__()
        self.context = context if context is not None else SSClumpNet(in_channels=4)
        self.paper = paper if paper is not None else SSClumpNet(in_channels=1)
        if self.context.in_channels != 4 or self.paper.in_channels != 1:
            raise ValueError("EnsembleNet needs an arch='context' and an arch='paper' "
                             f"network, got in_channels {self.context.in_channels} and "
                             f"{self.paper.in_channels}")
        self.register_buffer("paper_weight", torch.tensor(float(paper_weight)))
        self.register_buffer("bias", torch.tensor(float(bias)))

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The context network's 256-d features and the ensemble's logits ``(N, 2)``.

        Parameters
        ----------
        x : torch.Tensor
            ``(N, 4, 30, 30, 30)`` context samples.
        """
        if x.dim() != 5 or tuple(x.shape[1:]) != (4, INPUT_SIZE, INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"the ensemble verifier expects context samples of shape "
                             f"(N, 4, {INPUT_SIZE}, {INPUT_SIZE}, {INPUT_SIZE}), got "
                             f"{tuple(x.shape)}")
        f = self.context.features(x)
        lc = self.context.head(f)
        x0 = x[:, :1]
        # Keep the caller's layout (infer feeds channels-last on the CPU).
        cl = torch.channels_last_3d if x.is_contiguous(
            memory_format=torch.channels_last_3d) else torch.contiguous_format
        lp = self.paper(x0.contiguous(memory_format=cl))
        z = (lc[:, 1] - lc[:, 0]) + self.paper_weight * (lp[:, 1] - lp[:, 0]) + self.bias
        return f, torch.stack([torch.zeros_like(z), z], dim=1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The context network's 256-d features (what Constrained-KMeans clusters)."""
        return self.context.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, 2)``; softmax class 1 is the ensemble's p(clump)."""
        return self.features_and_logits(x)[1]


#: How the CLI and the dialog name each network to the user.
_NAMES = {"ensemble": "the ensemble verifier: context + paper networks",
          "paper": "the paper's network", "context": "the context network"}


def verifier_name(model: nn.Module) -> str:
    """What scored the candidates, in words (status lines, CLI summaries)."""
    arch = getattr(model, "arch", "paper")
    return _NAMES.get(arch, f"arch {arch!r}")
