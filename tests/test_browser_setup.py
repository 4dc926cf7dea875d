"""`make test-browser` (issue 24): outside `make test`'s run, and loud when Chromium is missing."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_test_browser_fails_naming_chromium_when_it_is_missing(tmp_path: Path) -> None:
    missing = tmp_path / "no-chromium"
    result = subprocess.run(
        ["make", "-s", "--no-print-directory", "check-chromium", f"CHROMIUM={missing}"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert f"Chromium is missing ({missing})" in result.stderr
    assert "apt-get install -y chromium chromium-driver" in result.stderr


def test_the_plain_test_run_does_not_collect_the_browser_tests() -> None:
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert options["testpaths"] == ["tests"]
    assert (ROOT / "tests_browser" / "test_inbox_browser.py").is_file()


def test_ci_runs_the_browser_tests_after_the_suite() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert script.index("make test\n") < script.index("make test-browser")
    assert "apt-get install -y -q chromium chromium-driver" in script
