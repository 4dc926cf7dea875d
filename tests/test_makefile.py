"""The Makefile's interpreter probe: silent, whatever shims are on PATH."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# What a pyenv shim prints for a Python version that is not installed.
PYENV_SHIM = """#!/bin/sh
echo "pyenv: $(basename "$0"): command not found" >&2
exit 127
"""


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_the_interpreter_probe_is_silent_with_shims_of_missing_pythons(tmp_path: Path) -> None:
    shims = tmp_path / "shims"
    shims.mkdir()
    for name in ("python3.13", "python3.12"):
        shim = shims / name
        shim.write_text(PYENV_SHIM)
        shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    real = tmp_path / "real"
    real.mkdir()
    (real / "python3.11").symlink_to(sys.executable)
    path = os.pathsep.join([str(shims), str(real), "/usr/bin", "/bin"])

    result = subprocess.run(
        ["make", "-s", "--no-print-directory", "--eval", "probe: ; @echo $(PYTHON)", "probe"],
        cwd=ROOT,
        env={"PATH": path, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.strip() == "python3.11"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_pythons_finds_each_version_on_path_and_takes_no_shim_for_one(
    tmp_path: Path,
) -> None:
    """`make pythons` runs the suite on what find_python finds and names the rest."""
    shims = tmp_path / "shims"
    shims.mkdir()
    shim = shims / "python3.98"  # not the running version, whichever that is
    shim.write_text(PYENV_SHIM)
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    real = tmp_path / "real"
    real.mkdir()
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    (real / f"python{version}").symlink_to(sys.executable)
    path = os.pathsep.join([str(shims), str(real), "/usr/bin", "/bin"])
    probe = "probe: ; @for v in $(OTHER_PYTHONS); do echo $$v=$$($(call find_python,$$v)); done"

    result = subprocess.run(
        ["make", "-s", "--no-print-directory", "--eval", probe, "probe",
         f"OTHER_PYTHONS={version} 3.98 3.99"],
        cwd=ROOT,
        env={"PATH": path, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.split() == [
        f"{version}={real / f'python{version}'}",
        "3.98=",  # a shim of a Python that is not installed is not taken for one
        "3.99=",
    ]
