"""Everything glue-ssclump registers with glue (called from ``glue_ssclump:setup``).

glue's plugin loader (``glue.main.load_plugins``) calls the ``glue.plugins`` entry
point ``glue_ssclump = glue_ssclump:setup`` and only *logs* an exception raised there,
so :func:`register_all` is idempotent and :func:`registrations` lets a test (or a
user) check that each item is really in glue's registries.
"""

from __future__ import annotations

from typing import Any

__all__ = ["register_all", "registrations"]


def _items() -> list[tuple[str, str, Any, dict[str, Any]]]:
    """(registry name, label, object, extra) for every registration."""
    from .exporters import GLUE_EXPORTERS
    from .factory import FACTORY_LABEL, is_ppv_candidates_file, load_ppv_candidates
    from .galaxy_exporters import GALAXY_EXPORTERS
    from .galaxy_factory import GALAXY_FACTORY_LABEL, is_galaxy_file, load_galaxy_clumps
    from .galaxy_links import GALAXY_AUTOLINKER_LABEL, suggest_galaxy_links
    from .links import AUTOLINKER_LABEL, copy_value, kms_to_ms, suggest_candidate_links

    items: list[tuple[str, str, Any, dict[str, Any]]] = [
        ("data_factory", FACTORY_LABEL, load_ppv_candidates,
         {"identifier": is_ppv_candidates_file, "priority": -100}),
        ("link_function", "glue-ssclump: catalogue value -> cube world coordinate (one-way)",
         copy_value, {"output_labels": ["world"]}),
        ("link_function", "glue-ssclump: km/s -> m/s (one-way)", kms_to_ms,
         {"output_labels": ["m_per_s"]}),
        ("autolinker", AUTOLINKER_LABEL, suggest_candidate_links, {}),
        # Below glue's FITS (100) and image (0) readers: never chosen automatically.
        ("data_factory", GALAXY_FACTORY_LABEL, load_galaxy_clumps,
         {"identifier": is_galaxy_file, "priority": -100}),
        ("autolinker", GALAXY_AUTOLINKER_LABEL, suggest_galaxy_links, {}),
    ]
    for label, function, extensions in GLUE_EXPORTERS + GALAXY_EXPORTERS:
        items.append(("data_exporter", label, function, {"extension": list(extensions)}))
    return items


def _present(registry: str, label: str, obj: Any) -> bool:
    from glue import config

    if registry == "data_factory":
        return any(m.function is obj and m.label == label for m in config.data_factory.members)
    if registry == "data_exporter":
        return any(m.function is obj and m.label == label for m in config.data_exporter.members)
    if registry == "link_function":
        return any(m.function is obj for m in config.link_function.members)
    if registry == "autolinker":
        return any(f is obj and lab == label for lab, f in config.autolinker.members)
    raise KeyError(registry)


def registrations() -> dict[str, bool]:
    """``"registry: label"`` -> whether it is currently registered with glue."""
    return {f"{reg}: {label}": _present(reg, label, obj) for reg, label, obj, _ in _items()}


def register_all() -> None:
    """Register the data factory, exporters, link functions and auto-linker with glue.

    Safe to call more than once: items already registered are skipped.

    Registered:

    * ``glue.config.data_factory``: "PPV cube + clump candidates (glue-ssclump)"
      (identifier always ``False``, so it is used only when chosen explicitly);
    * ``glue.config.data_exporter``: catalogue as FITS table / VOTable / ECSV with
      units, candidate mask cube (FITS with the cube WCS), manual labels CSV;
    * ``glue.config.link_function``: the one-way functions of the catalogue -> cube
      world-coordinate links (so the link editor can show and edit them);
    * ``glue.config.autolinker``: adds the join and coordinate links when a cube and
      its catalogue are added to the application;
    * the galaxy side: the data factory "Galaxy image + clumps (Faster R-CNN)"
      (identifier: 3-plane g,r,i FITS only, ranked below glue's readers), its
      auto-linker (image <-> clump boxes) and the DS9 region exporter.
    """
    from glue import config

    for registry, label, obj, extra in _items():
        if _present(registry, label, obj):
            continue
        if registry == "data_factory":
            config.data_factory(label, identifier=extra["identifier"],
                                priority=extra["priority"])(obj)
        elif registry == "data_exporter":
            config.data_exporter(label, extension=extra["extension"])(obj)
        elif registry == "link_function":
            config.link_function(info=label, output_labels=extra["output_labels"],
                                 category="glue-ssclump")(obj)
        elif registry == "autolinker":
            config.autolinker(label)(obj)
