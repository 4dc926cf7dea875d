"""Every Python block of the README runs, as a newcomer would run it, against the sandbox.

Each ```` ```python ```` block is written to a file and run by a fresh interpreter with the
sandbox's ``ROUTEE_*`` variables in its environment (what ``routee-viber sandbox`` prints). An
HTML comment right before a block changes how it runs:

``<!-- readme-test: setup ... -->``
    The Python code after the first line runs with the block: in place of a line ``# BLOCK``
    (indented as that line), or before the block when there is none. For fragments that use
    names defined elsewhere (``client``, ``message``, ...).
``<!-- readme-test: pytest ... -->``
    The block is a test module: pytest runs it in a fresh project with the plugin's fixtures.
``<!-- readme-test: skip REASON -->``
    Not run, only where running is impossible; the reason is required.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import NamedTuple

import pytest

from routee_viber_async import Template
from routee_viber_async.sandbox import Sandbox

pytest_plugins = ["pytester"]

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
#: Every Markdown file whose Python blocks run.
DOCUMENTS = [README, ROOT / "examples" / "README.md"]

_BLOCK = re.compile(
    r"(?:<!--\s*readme-test:(?P<directive>(?:(?!-->).)*)-->\n)?```python\n(?P<code>.*?)^```$",
    re.DOTALL | re.MULTILINE,
)
_WORD = re.compile(r"(\S+)[ \t]*(.*)", re.DOTALL)
_PLACEHOLDER = re.compile(r"^(?P<indent>[ \t]*)# BLOCK[ \t]*$", re.MULTILINE)


class Block(NamedTuple):
    """One ```` ```python ```` block: where it starts, its code, how it runs."""

    line: int
    code: str
    kind: str  # "run", "pytest" or "skip"
    setup: str  # "run" only: the code around (or before) the block
    reason: str  # "skip" only


def python_blocks(markdown: str) -> list[Block]:
    """The Python blocks of a Markdown text, with their ``readme-test`` directives."""
    blocks = []
    for found in _BLOCK.finditer(markdown):
        line = markdown.count("\n", 0, found.start("code"))  # the fence's line, 1-based
        directive = found.group("directive")
        kind, rest = _WORD.fullmatch((directive or "run").strip()).groups()  # type: ignore[union-attr]
        if kind == "setup":
            kind, setup = "run", rest.partition("\n")[2]
        else:
            setup = ""
        if kind not in ("run", "pytest", "skip"):
            raise ValueError(f"line {line}: unknown readme-test directive {kind!r}")
        reason = rest.strip() if kind == "skip" else ""
        blocks.append(Block(line, found.group("code"), kind, setup, reason))
    return blocks


def script_of(block: Block) -> str:
    """The program that runs a block: the block, placed into its setup."""
    if not block.setup.strip():
        return block.code
    placeholder = _PLACEHOLDER.search(block.setup)
    if placeholder is None:
        return block.setup.rstrip("\n") + "\n\n" + block.code
    indented = textwrap.indent(block.code, placeholder.group("indent")).rstrip("\n")
    script = block.setup[: placeholder.start()] + indented + block.setup[placeholder.end() :]
    return script.rstrip("\n") + "\n"


def readme_blocks(kind: str) -> list[Block]:
    return [block for block in python_blocks(README.read_text()) if block.kind == kind]


def document_blocks(kind: str) -> list[object]:
    """The blocks of every file in DOCUMENTS, as pytest parameters named FILE:LINE."""
    return [
        pytest.param(block, id=f"{document.relative_to(ROOT)}:{block.line}")
        for document in DOCUMENTS
        for block in python_blocks(document.read_text())
        if block.kind == kind
    ]


def sandbox_environment(sandbox: Sandbox, template: Template) -> dict[str, str]:
    """This environment with the sandbox's variables, as ``routee-viber sandbox`` prints them."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ROUTEE_")}
    env.update(
        ROUTEE_BASE_URL=sandbox.base_url,
        ROUTEE_AUTH_URL=sandbox.auth_url,
        ROUTEE_APPLICATION_ID=sandbox.credentials.application_id,
        ROUTEE_APPLICATION_SECRET=sandbox.credentials.application_secret,
        ROUTEE_SENDER_ID=sandbox.sender_id,
        ROUTEE_OTP_TEMPLATE_ID=template.template_id,
    )
    return env


# -- the extractor -----------------------------------------------------------------------------

EXAMPLE_MARKDOWN = """\
Text.

```python
print("plain")
```

<!-- readme-test: setup (around)
def main():
    x = 1
    # BLOCK
main()
-->
```python
print(x)
if x:
    print("indented")
```

<!-- readme-test: setup
x = 2
-->
```python
print(x)
```

<!-- readme-test: skip needs a phone -->
```python
dial()
```

<!-- an unrelated comment -->

```sh
echo not python
```

<!-- readme-test: pytest -->
```python
def test_it():
    pass
```
"""


def test_the_extractor_finds_every_python_block_and_its_directive() -> None:
    blocks = python_blocks(EXAMPLE_MARKDOWN)
    assert [(b.line, b.kind) for b in blocks] == [
        (3, "run"),
        (13, "run"),
        (22, "run"),
        (27, "skip"),
        (38, "pytest"),
    ]
    assert blocks[0].code == 'print("plain")\n'
    assert blocks[3].reason == "needs a phone"
    assert blocks[4].code == "def test_it():\n    pass\n"


def test_the_extractor_places_a_block_into_its_setup() -> None:
    plain, around, before, _, _ = python_blocks(EXAMPLE_MARKDOWN)
    assert script_of(plain) == 'print("plain")\n'
    assert script_of(around) == (
        'def main():\n    x = 1\n    print(x)\n    if x:\n        print("indented")\nmain()\n'
    )
    assert script_of(before) == "x = 2\n\nprint(x)\n"
    run = subprocess.run(
        [sys.executable, "-c", script_of(around)], capture_output=True, text=True, check=True
    )
    assert run.stdout == "1\nindented\n"


def test_the_extractor_refuses_an_unknown_directive() -> None:
    with pytest.raises(ValueError, match="line 2: unknown readme-test directive 'maybe'"):
        python_blocks("<!-- readme-test: maybe -->\n```python\npass\n```\n")


# -- the README --------------------------------------------------------------------------------


def test_the_readme_skips_no_block() -> None:
    # Running is possible for every block today; a skip must say why it is not.
    assert document_blocks("skip") == []


@pytest.mark.parametrize("block", document_blocks("run"))
async def test_a_readme_block_runs_against_the_sandbox(
    block: Block,
    routee_sandbox: Sandbox,
    routee_template: Template,
    tmp_path: Path,
) -> None:
    script = tmp_path / "snippet.py"
    script.write_text(script_of(block))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "error",
        str(script),
        cwd=tmp_path,
        env=sandbox_environment(routee_sandbox, routee_template),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), timeout=120)
    errors = err.decode()
    assert process.returncode == 0, f"line {block.line}:\n{errors}"
    assert "Unclosed" not in errors
    assert "Exception ignored" not in errors


def test_the_quick_start_passes_mypy_strict(tmp_path: Path) -> None:
    quick_start = python_blocks(README.read_text().split("## Quick start\n", 1)[1])[0]
    script = tmp_path / "quick_start.py"
    script.write_text(script_of(quick_start))
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(script)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def readme_pytest_configuration() -> str:
    """The ``pyproject.toml`` lines the README gives for the plugin (its first toml block)."""
    return README.read_text().split("```toml\n", 1)[1].split("```", 1)[0]


@pytest.mark.parametrize("block", document_blocks("pytest"))
def test_a_readme_test_module_passes_in_a_project_configured_as_the_readme_says(
    block: Block, pytester: pytest.Pytester
) -> None:
    pytester.makepyprojecttoml(readme_pytest_configuration())
    pytester.makepyfile(test_from_readme=block.code)
    # -W error: not even a warning (pytest-asyncio warns about an unset loop scope).
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error", timeout=120)
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("block", document_blocks("pytest"))
def test_a_readme_test_module_passes_in_an_unconfigured_project(
    block: Block, pytester: pytest.Pytester
) -> None:
    pytester.makeini("[pytest]\n")  # no asyncio_mode: the marker is enough
    pytester.makepyfile(test_from_readme=block.code)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*async def functions are not natively supported*")


def test_the_readme_has_a_pytest_plugin_example() -> None:
    (example,) = readme_blocks("pytest")
    assert "routee_template" in example.code
    assert "@pytest.mark.asyncio" in example.code


def test_readme_carries_the_example_service_verbatim() -> None:
    readme = README.read_text()
    example = (ROOT / "examples" / "fastapi_service.py").read_text().rstrip()
    assert f"```python\n{example}\n```" in readme


def test_readme_opens_with_the_two_commands() -> None:
    readme = README.read_text()
    first_block = readme.split("```sh\n", 1)[1].split("```", 1)[0]
    assert first_block.splitlines()[0].startswith("make demo")
    assert first_block.splitlines()[1].startswith("make test")
