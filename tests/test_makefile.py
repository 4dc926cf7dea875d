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
MAKE = shutil.which("make") or "make"

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
    """`make test` runs the suite on what find_python finds and names the rest."""
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
    probe = "probe: ; @for v in $(PYTHONS); do echo $$v=$$($(call find_python,$$v)); done"

    result = subprocess.run(
        ["make", "-s", "--no-print-directory", "--eval", probe, "probe",
         f"PYTHONS={version} 3.98 3.99"],
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


# What a make that runs this suite (make test) hands its children; the makes run here must not
# inherit its variables (FOUND, ...).
MAKE_STATE = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")


def own_make_env(**changes: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in MAKE_STATE}
    env.update(changes)
    return env


def make_probe(recipe: str, *assignments: str, env: dict[str, str] | None = None) -> str:
    """What ``recipe`` prints, run by the Makefile given ``assignments`` (``NAME=value``)."""
    result = subprocess.run(
        ["make", "-s", "--no-print-directory", "--eval", f"probe: ; @{recipe}", "probe",
         *assignments],
        cwd=ROOT,
        env=env or own_make_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout.strip()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize(
    ("own", "found", "runs"),
    [
        # The floors ride on the oldest Python found, the dev dependencies on every other one.
        ("3.11", "3.11 3.12 3.13", "3.11-floors 3.12-dev 3.13-dev"),
        ("3.13", "3.11 3.13", "3.11-floors 3.13-dev"),
        ("3.12", "3.12 3.13", "3.12-floors 3.13-dev"),
        # .venv's Python alone runs both.
        ("3.11", "3.11", "3.11-dev 3.11-floors"),
    ],
)
def test_make_test_runs_each_python_found_once_and_the_floors_on_the_oldest(
    own: str, found: str, runs: str
) -> None:
    assert make_probe("echo $(RUNS)", f"OWN={own}", f"FOUND={found}") == runs


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_python_found_nowhere_is_named_in_the_output() -> None:
    given = ("OWN=3.11", "PYTHONS=3.11 3.98 3.99")  # 3.98 and 3.99 exist nowhere
    no_pyenv = own_make_env(PATH=os.pathsep.join([str(Path(MAKE).parent), "/usr/bin", "/bin"]))

    assert make_probe("echo $(FOUND) / $(MISSING)", *given, env=no_pyenv) == "3.11 / 3.98 3.99"
    assert make_probe("$(name_missing) true", *given).splitlines() == [
        "Python 3.98: not found on PATH or under pyenv; the suite does NOT run on it",
        "Python 3.99: not found on PATH or under pyenv; the suite does NOT run on it",
    ]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_test_runs_lint_typecheck_then_the_runs_and_says_which() -> None:
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", "test",
         "OWN=3.11", "FOUND=3.11 3.12", "MISSING=3.13"],
        cwd=ROOT,
        env=own_make_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    planned = result.stdout
    assert planned.index("ruff check") < planned.index("mypy --strict") < planned.index("suite-")
    assert "make --no-print-directory suite-3.11-floors suite-3.12-dev" in planned
    assert "Python 3.13: not found" in planned
    assert "the suite passed in the runs 3.11-floors 3.12-dev; not found: 3.13" in planned
