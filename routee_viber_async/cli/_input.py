"""Reading ``send-many`` input: CSV (a ``to`` column, every other column a parameter) or JSONL.

Rows are read lazily, one at a time, so a million-row file is never held in memory. Bad input
raises :class:`InputError` with the row number and the reason.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from .. import _json

__all__ = ["InputError", "InputRow", "fingerprint_file", "read_rows"]


class InputError(Exception):
    """The input file cannot be used; the message names the row (1-based data rows) and why."""


@attrs.frozen
class InputRow:
    """One recipient and its template parameters (``repr`` hides the parameters: pins)."""

    index: int
    line: int
    to: str
    params: dict[str, str] = attrs.field(repr=False)


def read_rows(path: Path) -> Iterator[InputRow]:
    """The rows of a ``.csv`` or ``.jsonl``/``.ndjson`` file, in order (0-based ``index``)."""
    suffix = path.suffix.lower()
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        try:
            if suffix in (".jsonl", ".ndjson", ".json"):
                yield from _read_jsonl(handle)
            elif suffix in (".csv", ".tsv", ".txt"):
                yield from _read_csv(handle, "\t" if suffix == ".tsv" else ",")
            else:
                raise InputError(f"{path}: unknown input format (use .csv or .jsonl)")
        except UnicodeDecodeError:
            raise InputError(f"{path}: not UTF-8 text") from None


def _read_csv(handle: Any, delimiter: str) -> Iterator[InputRow]:
    reader = csv.reader(handle, delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        raise InputError("the file is empty: a header row with a 'to' column is required")
    names = [name.strip() for name in header]
    if "to" not in names:
        raise InputError("the header row has no 'to' column")
    if len(set(names)) != len(names) or "" in names:
        raise InputError("the header row has a blank or repeated column name")
    to_column = names.index("to")
    for index, cells in enumerate(reader):
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            raise InputError(f"row {index + 1} (line {line}): empty row")
        if len(cells) != len(names):
            raise InputError(
                f"row {index + 1} (line {line}): {len(cells)} cells, the header has {len(names)}"
            )
        params = {
            name: cell
            for position, (name, cell) in enumerate(zip(names, cells, strict=True))
            if position != to_column and cell != ""
        }
        yield InputRow(index, line, cells[to_column].strip(), params)


def _read_jsonl(handle: Any) -> Iterator[InputRow]:
    index = 0
    for line_number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        where = f"row {index + 1} (line {line_number})"
        try:
            data = _json.loads(line)
        except _json.JSONDecodeError:
            raise InputError(f"{where}: not valid JSON") from None
        if not isinstance(data, dict):
            raise InputError(f"{where}: expected a JSON object")
        to = data.get("to")
        if not isinstance(to, str):
            raise InputError(f"{where}: 'to' is missing or not a string")
        params = data.get("templateParams", {})
        if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
            raise InputError(f"{where}: 'templateParams' must be an object")
        for name, value in params.items():
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise InputError(f"{where}: parameter {name} must be a string or number")
        unknown = set(data) - {"to", "templateParams"}
        if unknown:
            raise InputError(f"{where}: unknown keys {sorted(unknown)}")
        yield InputRow(index, line_number, to.strip(), {k: str(v) for k, v in params.items()})
        index += 1


def fingerprint_file(path: Path) -> str:
    """A SHA-256 of the file's bytes (the journal refuses to resume a changed input)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
