"""glue-core integration (layer 2): datasets, links, subsets, exporters, sessions.

Imports glue-core (never Qt). The pieces:

- :mod:`.factory` -- the data factory "PPV cube + clump candidates (glue-ssclump)"
  (:func:`load_ppv_candidates`) and :func:`detect_in_data` for a cube already loaded;
- :mod:`.links` -- the ``clump_id`` join and the catalogue -> cube coordinate links;
- :mod:`.selection` -- linked brushing helpers (ids <-> subsets, regions);
- :mod:`.writeback` -- :func:`write_verdicts` and the verdict / label subset groups;
- :mod:`.exporters` -- catalogue, mask cube and labels export (Python and glue's
  "Export Data/Subsets");
- :mod:`.session` -- session save / restore helpers;
- :mod:`.registration` -- :func:`register_all`, called by ``glue_ssclump:setup``.
"""

from .exporters import (
    catalog_table,
    export_catalog,
    export_labels_csv,
    export_mask_cube,
    labels_from,
    mask_cube_hdu,
)
from .factory import (
    FACTORY_LABEL,
    attach_candidates,
    catalog_data_for,
    compute_candidates,
    cube_data_for,
    detect_in_data,
    load_ppv_candidates,
    make_catalog_data,
    make_cube_data,
    ppv_cube_from_data,
    use_progress,
)
from .links import candidate_links, find_candidate_pairs, link_candidates
from .registration import register_all, registrations
from .selection import (
    candidates_in_region,
    rows_for_ids,
    select_candidates,
    select_candidates_in_region,
    selected_ids,
    set_subset_group,
)
from .session import load_session, save_session
from .writeback import update_verdict_subsets, write_verdicts

__all__ = [
    "FACTORY_LABEL",
    "attach_candidates",
    "candidate_links",
    "candidates_in_region",
    "catalog_data_for",
    "catalog_table",
    "compute_candidates",
    "cube_data_for",
    "detect_in_data",
    "export_catalog",
    "export_labels_csv",
    "export_mask_cube",
    "find_candidate_pairs",
    "labels_from",
    "link_candidates",
    "load_ppv_candidates",
    "load_session",
    "make_catalog_data",
    "make_cube_data",
    "mask_cube_hdu",
    "ppv_cube_from_data",
    "register_all",
    "registrations",
    "rows_for_ids",
    "save_session",
    "select_candidates",
    "select_candidates_in_region",
    "selected_ids",
    "set_subset_group",
    "update_verdict_subsets",
    "use_progress",
    "write_verdicts",
]
