"""The SS-3D-Clump model: the public entry point for the network and its inference.

The work is split by concept:

- :mod:`~glue_ssclump.core.network`: :class:`SSClumpNet` (the layer stack of Luo et
  al. 2024 and how it follows the authors' reference code), :func:`build_model`,
  :func:`reference_features` and the parameter / multiply-add counts;
- :mod:`~glue_ssclump.core.network_ops`: the fast paths the network uses in training
  and inference (same results as the plain modules up to float rounding);
- :mod:`~glue_ssclump.core.inference`: :func:`infer`, batched and gradient-free.

Saving and loading trained weights is :mod:`~glue_ssclump.core.checkpoint` (a
checkpoint stores a state dict and plain metadata, never a class path, so where these
classes live does not matter to old files).
"""

from __future__ import annotations

from .inference import (
    DEFAULT_CPU_BATCH,
    DEFAULT_CUDA_BATCH,
    SampleSourceLike,
    default_batch_size,
    infer,
    prepare_input,
)
from .network import (
    ARCH_VERSION,
    ARCHS,
    CONTEXT_ARCH_VERSION,
    INPUT_SIZE,
    N_CLASSES,
    N_FEATURES,
    SSClumpNet,
    build_model,
    count_macs,
    count_parameters,
    reference_features,
)
from .network_ops import _conv_bn_eval as _conv_bn_eval
from .network_ops import _dropout as _dropout
from .network_ops import _max_pool2_same as _max_pool2_same

__all__ = [
    "ARCHS",
    "ARCH_VERSION",
    "CONTEXT_ARCH_VERSION",
    "DEFAULT_CPU_BATCH",
    "DEFAULT_CUDA_BATCH",
    "INPUT_SIZE",
    "N_FEATURES",
    "N_CLASSES",
    "SSClumpNet",
    "SampleSourceLike",
    "build_model",
    "count_parameters",
    "count_macs",
    "infer",
    "default_batch_size",
    "prepare_input",
    "reference_features",
]
