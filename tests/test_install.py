"""An install that is not editable works from anywhere: a wheel built from the checkout, installed into a throwaway
folder and used from a directory outside the checkout, imports every module, reports a copied results folder and
trains a run on generated data, reading and writing only where DATA_ROOT and OUT_DIR (relative to the working
directory) say."""
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import make_mnist_format
from tests.test_experiment import TINY
from tests.test_imports import MODULES

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_wheel_installs_imports_reports_and_trains_outside_the_checkout(tmp_path):
    wheels, site, work = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)], check=True,
                   cwd=tmp_path)
    [wheel] = wheels.glob("*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    assert {f"{m.replace('.', '/')}.py" for m in MODULES} <= shipped and "splits/stratified_splits.json" in shipped
    subprocess.run(pip + ["install", "--no-deps", "--target", str(site), str(wheel)], check=True, cwd=tmp_path)
    work.mkdir()
    env = dict(os.environ, PYTHONPATH=str(site), DATA_ROOT="")

    def python(*args):
        done = subprocess.run([sys.executable, *args], cwd=work, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    # every module imports from the installed copy, none from the checkout
    where = json.loads(python("-c", f"import importlib, json; print(json.dumps({{m: importlib.import_module(m).__file__ "
                                    f"for m in {sorted(MODULES)!r}}}))"))
    assert all(Path(f).is_relative_to(site) for f in where.values()), where
    # the report of a copied results folder, written where it is
    shutil.copytree(ROOT / "results" / "mnist-250-mechanism", work / "results" / "mechanism")
    (work / "results" / "mechanism" / "table.md").unlink()
    python("-m", "report", "results/mechanism")
    assert (work / "results" / "mechanism" / "table.md").read_text().startswith("# MNIST-250")
    # a run on generated data: read from data/ and written to results/ of the working directory
    make_mnist_format(work / "data")
    python("-m", "mnist_top", *[a for a in TINY if not a.startswith("--EPOCHS")], "--EPOCHS=1", "--REGULARIZERS=vanilla",
           "--OUT_DIR=results/tiny")
    [final] = (work / "results" / "tiny" / "runs").glob("*/final.json")
    assert json.loads(final.read_text())["commit"] == "unknown"      # an installed copy: no commit names its code
    assert not [p for p in site.rglob("*") if p.suffix in (".jsonl", ".md", ".png") and "results" in p.parts]
