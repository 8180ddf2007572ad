"""Clumps in galaxy images: Faster R-CNN after Popp et al. (Galaxy Zoo: Clump Scout).

No glue, no Qt.  See ``docs/galaxy.md``.  Pixel convention of every catalogue: ``x`` is
the numpy column and ``y`` the numpy row of the array as stored (row 0 = first row of
the FITS data = top row of a PNG), 0-based.
"""

from .detect import SCORE_MIN, baseline_clumps, detect_clumps
from .evaluate import GalaxyEvaluation, count, evaluate, match, plot_evaluation
from .image import (
    DEFAULT_PSF_FWHM_PIX,
    GalaxyError,
    GalaxyImage,
    image_from_planes,
    lupton_rgb,
    noise_sigma,
    read_galaxy_image,
    write_gri_fits,
)
from .model import (
    ARCHS,
    DEFAULT_ARCH,
    DEFAULT_MODEL_PATH,
    GalaxyModel,
    build_detector,
    load_default_model,
    load_galaxy_checkpoint,
    save_galaxy_checkpoint,
)
from .photometry import aperture_fluxes, flux_ratios
from .postprocess import Candidates, class_agnostic_nms, host_mask, merge_close
from .synth import CLASS_NAMES, HOSTS, synth_galaxies, synth_galaxy
from .train import TRAIN_HOSTS, train_detector

__all__ = [
    "HOSTS", "SCORE_MIN", "TRAIN_HOSTS", "Candidates", "GalaxyEvaluation", "aperture_fluxes",
    "baseline_clumps",
    "class_agnostic_nms", "count", "detect_clumps", "evaluate", "flux_ratios", "host_mask",
    "match", "merge_close", "plot_evaluation",
    "ARCHS", "CLASS_NAMES", "DEFAULT_ARCH", "DEFAULT_MODEL_PATH", "DEFAULT_PSF_FWHM_PIX",
    "GalaxyError", "GalaxyImage", "GalaxyModel", "build_detector", "image_from_planes",
    "load_default_model", "load_galaxy_checkpoint", "lupton_rgb", "noise_sigma",
    "read_galaxy_image", "save_galaxy_checkpoint", "synth_galaxies", "synth_galaxy",
    "train_detector", "write_gri_fits",
]
