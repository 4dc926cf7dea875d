"""Shared test helpers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def seed_examples() -> dict[str, Any]:
    """The JSON examples of Routee's reference (tests/data/seed_examples.json)."""
    data: dict[str, Any] = json.loads((DATA / "seed_examples.json").read_text())
    return data
