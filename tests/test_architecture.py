"""The shape of the codebase: import layers (import-linter contracts in pyproject.toml) and the packaging."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from conftest import ROOT


def test_import_contracts_are_kept():
    """pages/cli -> distill -> explain -> train/zoo/metrics/data/models -> core; plots for pages only;
    no Streamlit inside vizcore (see ``[tool.importlinter]`` in pyproject.toml)."""
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and "0 broken" in out.stdout, out.stdout + out.stderr


def test_importing_the_library_loads_no_app_framework():
    code = ("import sys, vizcore, vizcore.cli, vizcore.distill.protocol, vizcore.explain.importance, "
            "vizcore.explain.visualize\n"
            "bad = [m for m in ('streamlit', 'plotly') if m in sys.modules]\n"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def _names(lines) -> dict[str, str]:
    reqs = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            name = re.split(r"[<>=!~\[ ]", line, maxsplit=1)[0].lower()
            reqs[name] = line
    return reqs


def test_pyproject_mirrors_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert _names(project["dependencies"]) == _names((ROOT / "requirements.txt").read_text().splitlines())
    dev = _names((ROOT / "requirements-dev.txt").read_text().splitlines())
    assert _names(project["optional-dependencies"]["dev"]) == dev
    assert project["scripts"]["vizcore"] == "vizcore.cli:main"
