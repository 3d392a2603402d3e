"""House rules: clean notebooks, lint, one repository setting, and the documented commands."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import ROOT

from mcf_course.data import REPOSITORY_URL


def tracked(pattern: str) -> list[Path]:
    files = subprocess.run(["git", "ls-files", pattern], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    return [ROOT / f for f in files]


def test_notebooks_are_committed_without_outputs():
    notebooks = tracked("*.ipynb") or list(ROOT.glob("*/*/*.ipynb"))
    assert notebooks, "no notebooks found"
    for path in notebooks:
        nb = json.loads(path.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert not cell["outputs"], f"{path.relative_to(ROOT)} has outputs"
                assert cell["execution_count"] is None, f"{path.relative_to(ROOT)} has execution counts"


def test_code_is_ruff_clean():
    ruff = Path(sys.executable).with_name("ruff")
    result = subprocess.run([str(ruff), "check", "."], cwd=ROOT, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_one_repository_setting():
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    assert config["repository"]["url"] == REPOSITORY_URL, (
        "_config.yml repository.url and mcf_course.data.REPOSITORY_URL must be the same")
    for path in [*(ROOT / "solutions").glob("*/*.ipynb"), *(ROOT / "book").glob("*.md")]:
        urls = set(re.findall(r"git\+(https://github\.com/[\w./-]+)", path.read_text()))
        assert urls <= {REPOSITORY_URL}, f"{path.name} installs from {urls}"


def test_readme_documents_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "python3 course.py book" in readme and "python3 course.py test" in readme
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "python3 course.py test" in ci


def test_licence_and_citation_files_exist():
    licence = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "CC BY 4.0" in licence and "MIT" in licence
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert citation["cff-version"].startswith("1.2") and citation["title"]
