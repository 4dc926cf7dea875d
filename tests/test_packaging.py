"""The declared dependency floors are the ones ``make floors`` tests."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _floors_in_pyproject() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    floors = {}
    for requirement in project["dependencies"]:
        found = re.fullmatch(r"([A-Za-z0-9_.\-]+)>=([0-9.]+)(?:,<[0-9.]+)?", requirement)
        assert found, f"{requirement!r}: every runtime dependency needs a >= floor"
        floors[found.group(1).lower()] = found.group(2)
    return floors


def _pins_in_floors_txt() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "floors.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def _release(version: str) -> tuple[int, ...]:
    parts = [int(p) for p in version.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def test_floors_txt_pins_each_runtime_dependency_at_its_declared_floor() -> None:
    declared = _floors_in_pyproject()
    pinned = _pins_in_floors_txt()
    assert set(pinned) == set(declared)
    for name, floor in declared.items():
        assert _release(pinned[name]) == _release(floor), name


def test_the_wheel_ships_the_inbox_page(tmp_path: Path) -> None:
    """The sandbox's web inbox is served from files inside the package (issue 24)."""
    import subprocess
    import sys
    import zipfile

    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path), str(ROOT)],
        check=True, timeout=300, capture_output=True,
    )  # fmt: skip
    [wheel] = tmp_path.glob("routee_viber_async-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for asset in ("index.html", "app.js", "style.css"):
        assert f"routee_viber_async/sandbox/static/{asset}" in names
