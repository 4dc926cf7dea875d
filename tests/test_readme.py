"""The README's complete FastAPI service is exactly the example file that the tests run."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_readme_carries_the_example_service_verbatim() -> None:
    readme = (ROOT / "README.md").read_text()
    example = (ROOT / "examples" / "fastapi_service.py").read_text().rstrip()
    assert f"```python\n{example}\n```" in readme


def test_readme_opens_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```sh\n", 1)[1].split("```", 1)[0]
    assert first_block.splitlines()[0].startswith("make demo")
    assert first_block.splitlines()[1].startswith("make test")
