"""Survey scale: many cubes, or one cube too large for memory, on dask.distributed.

* :mod:`.tiles`: inputs, per-cube noise statistics, tile descriptions, windowed reads;
* :mod:`.border`: the ownership and completeness rule at tile borders;
* :mod:`.tile`: one tile's work (detect, settle border clumps, verify, write);
* :mod:`.run`: the dask orchestration, resume and the merged outputs.

Core layer: no glue, no Qt.  See ``docs/survey.md``.
"""

from __future__ import annotations

from .border import (
    IslandRule,
    island_mask,
    island_rule,
    recommended_halo,
    unsettled_islands,
)
from .run import (
    SurveyResult,
    merge_cube,
    merge_survey,
    open_survey_cube,
    run_survey,
    survey,
)
from .tile import (
    ModelPlugin,
    SurveySettings,
    TileResult,
    process_tile,
    read_tile_result,
    write_tile_result,
)
from .tiles import (
    CubeInfo,
    SurveyInputError,
    Tile,
    check_spectral_axes,
    expand_inputs,
    inspect_cube,
    plan_tiles,
    read_window,
)

__all__ = [
    "CubeInfo", "IslandRule", "ModelPlugin", "SurveyInputError", "SurveyResult",
    "SurveySettings", "Tile", "TileResult", "check_spectral_axes", "expand_inputs",
    "inspect_cube", "island_mask", "island_rule", "merge_cube", "merge_survey",
    "open_survey_cube", "plan_tiles", "process_tile", "read_tile_result", "read_window",
    "recommended_halo", "run_survey", "survey", "unsettled_islands", "write_tile_result",
]
