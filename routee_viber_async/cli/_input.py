"""Reading ``send-many`` input: CSV (a ``to`` column, every other column a parameter) or JSONL.

A CSV header's ``to`` is matched in any case (``To``, `` TO ``); blank lines at the end of a
file are ignored (one in the middle is an error: it is more likely an accident than a row).

Rows are read lazily, one at a time, so a million-row file is never held in memory. Bad input
raises :class:`InputError` with the row number and the reason.

``send-many`` reads its input twice: once to check every row (the preflight) and once to send.
:class:`InputSnapshot` makes the second read one of exactly the bytes the first one checked: the
first read records a SHA-256 of each 1 MiB chunk (and of the whole file, the journal's
fingerprint), and the second checks each chunk against it before a row is parsed from it. An
input edited in between raises :class:`InputChanged` instead of sending unchecked rows.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs

__all__ = [
    "InputChanged",
    "InputError",
    "InputRow",
    "InputSnapshot",
    "fingerprint_file",
    "read_rows",
]

_CHUNK = 1 << 20


class InputError(Exception):
    """The input file cannot be used; the message names the row (1-based data rows) and why."""


class InputChanged(InputError):
    """The input file is no longer the one that was checked."""


@attrs.define
class InputRow:
    """One recipient and its template parameters (``repr`` hides the parameters: pins).

    Not frozen: a row is built for every line of every pass, and nothing holds one for long.
    """

    index: int
    line: int
    to: str
    params: dict[str, str] = attrs.field(repr=False)


def read_rows(path: Path) -> Iterator[InputRow]:
    """The rows of a ``.csv`` or ``.jsonl``/``.ndjson`` file, in order (0-based ``index``)."""
    return _parse(path, lambda index, chunk: None)


class InputSnapshot:
    """An input file read once to be checked, then read again as exactly the same bytes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._digests: list[bytes] = []
        self._whole = hashlib.sha256()
        self._complete = False

    @property
    def sha256(self) -> str:
        """The SHA-256 of the file as first read (what :func:`fingerprint_file` gives)."""
        assert self._complete, "the first read has not ended"
        return self._whole.hexdigest()

    def first_read(self) -> Iterator[InputRow]:
        """The rows, recording the digests of the bytes they were read from."""
        assert not self._digests, "an input is read first only once"
        yield from _parse(self.path, self._record)
        self._complete = True

    def rows(self) -> Iterator[InputRow]:
        """The rows again; raises :class:`InputChanged` before a row from changed bytes."""
        assert self._complete, "the first read has not ended"
        return _parse(self.path, self._verify)

    def _record(self, index: int, chunk: bytes) -> None:
        self._digests.append(hashlib.sha256(chunk).digest())
        self._whole.update(chunk)

    def _verify(self, index: int, chunk: bytes) -> None:
        expected = self._digests[index] if index < len(self._digests) else None
        if expected != hashlib.sha256(chunk).digest():
            raise InputChanged(
                f"{self.path} changed after it was checked (from byte {index * _CHUNK} on): "
                "stopped before sending a row that was not checked; restore the file as it "
                "was and run again to send the rest"
            )


def _parse(path: Path, on_chunk: Callable[[int, bytes], None]) -> Iterator[InputRow]:
    suffix = path.suffix.lower()
    try:
        file = path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    with file:
        raw = _ChunkReader(file, on_chunk)
        handle = io.TextIOWrapper(io.BufferedReader(raw, _CHUNK), "utf-8-sig", newline="")
        try:
            if suffix in (".jsonl", ".ndjson", ".json"):
                yield from _read_jsonl(handle)
            elif suffix in (".csv", ".tsv", ".txt"):
                yield from _read_csv(handle, "\t" if suffix == ".tsv" else ",")
            else:
                raise InputError(f"{path}: unknown input format (use .csv or .jsonl)")
        except UnicodeDecodeError:
            raise InputError(f"{path}: not UTF-8 text") from None
        raw.drain()


class _ChunkReader(io.RawIOBase):
    """A binary file read in whole chunks, each handed to ``on_chunk`` before any of its bytes
    is served (``on_chunk`` may raise to refuse it); the empty read at the end is one too."""

    def __init__(self, file: io.BufferedReader, on_chunk: Callable[[int, bytes], None]) -> None:
        self._file = file
        self._on_chunk = on_chunk
        self._chunk = b""
        self._served = 0
        self._count = 0
        self._ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._served == len(self._chunk):
            if self._ended:
                return 0
            self._next_chunk()
        size = min(len(buffer), len(self._chunk) - self._served)
        buffer[:size] = self._chunk[self._served : self._served + size]
        self._served += size
        return size

    def drain(self) -> None:
        """Read (and hand over) the rest of the file, up to the end."""
        while not self._ended:
            self._next_chunk()

    def _next_chunk(self) -> None:
        chunk = self._file.read(_CHUNK)
        self._on_chunk(self._count, chunk)
        self._count += 1
        self._chunk, self._served, self._ended = chunk, 0, chunk == b""


def _read_csv(handle: Any, delimiter: str) -> Iterator[InputRow]:
    reader = csv.reader(handle, delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        raise InputError("the file is empty: a header row with a 'to' column is required")
    names = [name.strip() for name in header]
    # "to" in any case ("To", "TO"); the parameters' names are the template's, case and all.
    to_columns = [position for position, name in enumerate(names) if name.lower() == "to"]
    if not to_columns:
        raise InputError("the header row has no 'to' column")
    if len(to_columns) > 1 or len(set(names)) != len(names) or "" in names:
        raise InputError("the header row has a blank or repeated column name")
    (to_column,) = to_columns
    parameters = [(position, name) for position, name in enumerate(names) if position != to_column]
    width = len(names)
    index = 0
    blank: int | None = None  # the line of a blank row: fine at the end of the file only
    for cells in reader:
        line = reader.line_num
        # A row with a recipient is not blank: the common case needs no look at every cell.
        to = cells[to_column].strip() if len(cells) == width else ""
        if not to and not any(cell.strip() for cell in cells):
            blank = line if blank is None else blank
            continue
        if blank is not None:
            raise InputError(f"row {index + 1} (line {blank}): empty row")
        if len(cells) != width:
            raise InputError(
                f"row {index + 1} (line {line}): {len(cells)} cells, the header has {width}"
            )
        params = {name: cells[position] for position, name in parameters if cells[position] != ""}
        yield InputRow(index, line, to, params)
        index += 1


class _Number(str):
    """A JSON number as the text it was written as: ``1e3`` stays "1e3", a long pin keeps every
    digit (a float or an int would rewrite both)."""


class _NotANumber:
    """``NaN``, ``Infinity`` or ``-Infinity``: not JSON, refused with the field's name."""

    def __init__(self, text: str) -> None:
        self.text = text


def _decode(line: str) -> Any:
    return json.loads(line, parse_int=_Number, parse_float=_Number, parse_constant=_NotANumber)


def _read_jsonl(handle: Any) -> Iterator[InputRow]:
    index = 0
    for line_number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        where = f"row {index + 1} (line {line_number})"
        try:
            data = _decode(line)
        except ValueError:
            raise InputError(f"{where}: not valid JSON") from None
        if not isinstance(data, dict):
            raise InputError(f"{where}: expected a JSON object")
        to = data.get("to")
        if not isinstance(to, str) or isinstance(to, _Number):
            raise InputError(f"{where}: 'to' is missing or not a string")
        params = data.get("templateParams", {})
        if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
            raise InputError(f"{where}: 'templateParams' must be an object")
        for name, value in params.items():
            if isinstance(value, _NotANumber):
                raise InputError(f"{where}: parameter {name}: {value.text} is not a JSON number")
            if not isinstance(value, str):
                raise InputError(f"{where}: parameter {name} must be a string or number")
        unknown = set(data) - {"to", "templateParams"}
        if unknown:
            raise InputError(f"{where}: unknown keys {sorted(unknown)}")
        # str() of a _Number is a plain str holding the number's text as written.
        yield InputRow(index, line_number, to.strip(), {k: str(v) for k, v in params.items()})
        index += 1


def fingerprint_file(path: Path) -> str:
    """A SHA-256 of the file's bytes (the journal refuses to resume a changed input)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
