"""glue_ssclump registers itself through glue's own plugin loader.

glue's ``load_plugins`` calls every ``glue.plugins`` entry point and only logs an
exception raised by a plugin's ``setup()``, so this checks the registries afterwards.
It runs in a fresh interpreter (with its own HOME, so glue's plugins.cfg / settings
are throwaway) because registrations are process-wide and cannot be undone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = r"""
import json, logging
from glue import config
from glue.main import load_plugins, list_loaded_plugins
before = [m.label for m in config.data_factory.members]
load_plugins(require_qt_plugins=False)
from glue_ssclump.integration.registration import registrations
from glue_ssclump.integration.factory import FACTORY_LABEL, load_ppv_candidates
from glue_ssclump.integration.links import AUTOLINKER_LABEL
factory = [m for m in config.data_factory.members if m.label == FACTORY_LABEL]
print(json.dumps({
    "loaded": list_loaded_plugins(),
    "registered": registrations(),
    "factory_before": FACTORY_LABEL in before,
    "n_factory": len(factory),
    "factory_is_ours": bool(factory) and factory[0].function is load_ppv_candidates,
    "identifier": bool(factory) and factory[0].identifier("whatever.fits"),
    "exporters": [m.label for m in config.data_exporter.members if "glue-ssclump" in m.label],
    "autolinkers": [label for label, _ in config.autolinker.members],
}))
"""


def test_entry_point_declared():
    eps = [ep for ep in entry_points(group="glue.plugins") if ep.name == "glue_ssclump"]
    assert len(eps) == 1
    assert eps[0].value == "glue_ssclump:setup"


def test_load_plugins_registers_everything(tmp_path):
    env = dict(os.environ, HOME=str(tmp_path), QT_QPA_PLATFORM="offscreen",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                       os.environ.get("PYTHONPATH")])))
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert "glue_ssclump" in result["loaded"]
    assert not result["factory_before"]
    missing = [key for key, ok in result["registered"].items() if not ok]
    assert not missing, f"not registered: {missing}"
    assert len(result["registered"]) == 12  # 9 for cubes, 3 for galaxy images
    assert result["n_factory"] == 1 and result["factory_is_ours"]
    assert result["identifier"] is False
    assert len(result["exporters"]) == 6
    assert any("glue-ssclump" in label for label in result["autolinkers"])


def test_register_all_is_idempotent():
    from glue import config

    from glue_ssclump.integration import register_all, registrations

    register_all()
    n_factories = len(config.data_factory.members)
    n_exporters = len(config.data_exporter.members)
    register_all()
    assert len(config.data_factory.members) == n_factories
    assert len(config.data_exporter.members) == n_exporters
    assert all(registrations().values())
