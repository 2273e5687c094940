"""naas_tl as a wheel: built from this checkout, installed into a fresh venv, run from a folder
that is not the checkout. Templates, budgets, bundled workloads and the data must come from
inside the installed package, never from the source tree."""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MAPPED = ("arch_templates", "budgets", "workloads")    # top-level folders shipped as package data


def test_pyproject_lists_every_package():
    """pyproject.toml lists packages explicitly (so that the top-level folders can be mapped
    in); a subpackage missing from the list would be left out of the wheel."""
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {".".join(p.parent.relative_to(REPO).parts)
               for p in (REPO / "naas_tl").rglob("__init__.py")}
    mapped = {f"naas_tl.{f}" for f in MAPPED}
    assert set(cfg["packages"]) == on_disk | mapped
    assert cfg["package-dir"] == {f"naas_tl.{f}": f for f in MAPPED}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv holding only the wheel. Its dependencies (numpy, numba, nevergrad, ...) are
    the test venv's, reached through a .pth path line: that adds the folder without running
    the .pth files in it, so the checkout's editable install stays out of sight."""
    tmp = tmp_path_factory.mktemp("wheel")
    # The build runs in the checkout's build/ folder, so `make test`'s worker processes take
    # turns: the first builds the wheel into the folder they share, the others reuse it.
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):   # basetemp is this run's folder/popen-gwN
        shared = shared.parent
    with open(shared / "naas_tl-wheel.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        wheels = shared / "naas_tl-wheel"
        if not list(wheels.glob("naas_tl-*.whl")):
            left_behind = [p for p in (REPO / "build",) if not p.exists()]
            build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO),
                                    "--no-deps", "--no-build-isolation", "-q", "-w",
                                    str(wheels)], capture_output=True, text=True)
            for p in left_behind:   # an in-tree build leaves build/ behind; it was not there
                shutil.rmtree(p, ignore_errors=True)
            assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = wheels.glob("naas_tl-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    inst = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install",
                           "--no-deps", "--no-index", "-q", str(wheel)],
                          capture_output=True, text=True)
    assert inst.returncode == 0, inst.stderr[-2000:]
    return venv, tmp


def _run(venv: Path, cwd: Path, *args, timeout=900):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(venv / "bin" / "naas-tl"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_the_wheel_carries_the_bundled_folders(installed):
    venv, tmp = installed
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import json, naas_tl, naas_tl.resources as r; "
         "print(json.dumps([naas_tl.__file__] + [str(r.bundled(f)) for f in "
         f"{list(MAPPED)!r}] + [str(r.DATA_DIR)]))"],
        cwd=tmp, capture_output=True, text=True, check=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    paths = [Path(p) for p in json.loads(probe.stdout)]
    for p in paths:
        assert venv in p.parents, f"{p} is not inside the installed package"
        assert REPO not in p.parents
    pkg = paths[0].parent
    assert sorted(x.name for x in (pkg / "arch_templates").glob("*.yaml.j2")) == \
        sorted(x.name for x in (REPO / "arch_templates").glob("*.yaml.j2"))
    assert (pkg / "budgets" / "budgets.yaml").read_text() == \
        (REPO / "budgets" / "budgets.yaml").read_text()
    assert sorted(x.name for x in (pkg / "budgets" / "dataflows").iterdir()) == \
        sorted(x.name for x in (REPO / "budgets" / "dataflows").iterdir())
    assert sorted(x.name for x in (pkg / "workloads").glob("*.yaml")) == \
        sorted(x.name for x in (REPO / "workloads").glob("*.yaml"))
    for data in ("data/energy", "data/reference"):      # every file, subfolders included
        ours = sorted(p.relative_to(REPO / "naas_tl").as_posix()
                      for p in (REPO / "naas_tl" / data).rglob("*") if p.is_file())
        theirs = sorted(p.relative_to(pkg).as_posix()
                        for p in (pkg / data).rglob("*") if p.is_file())
        assert theirs == ours and ours


def test_search_and_compare_run_from_the_installed_wheel(installed):
    venv, tmp = installed
    work = tmp / "elsewhere"
    work.mkdir()
    r = _run(venv, work, "search", "--arch", "nvdla", "--hw-trials", "2", "--map-trials", "16",
             "--out", "x", "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads((work / "x" / "result.json").read_text())
    assert result["stages"], result
    assert any((work / "x").rglob("arch.yaml"))
    c = _run(venv, work, "compare")
    assert c.returncode == 0, c.stdout[-2000:] + c.stderr[-2000:]
    n_ok, n = c.stdout.split(" cases match")[0].split()[-1].split("/")
    assert int(n) >= 45 and n_ok == n, c.stdout[-2000:]
