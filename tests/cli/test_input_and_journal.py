"""send-many's input reader and journal, without the network."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from routee_viber_async.cli._input import (
    InputChanged,
    InputError,
    InputRow,
    InputSnapshot,
    fingerprint_file,
    read_rows,
)
from routee_viber_async.cli._journal import Journal, JournalMismatch

FINGERPRINT = {"input_sha256": "abc", "sender": "s", "template_id": "t", "lang": "en"}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_rows_map_columns_to_params(tmp_path: Path) -> None:
    path = write(
        tmp_path, "in.csv", "to,pin,minutes\n+306912345678,987650,5\n+306912345679,654321,\n"
    )
    rows = list(read_rows(path))
    assert [(r.index, r.to, r.params) for r in rows] == [
        (0, "+306912345678", {"pin": "987650", "minutes": "5"}),
        (1, "+306912345679", {"pin": "654321"}),  # an empty cell is a missing parameter
    ]
    assert "987650" not in repr(rows[0])


def test_jsonl_rows(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "in.jsonl",
        '{"to": "+306912345678", "templateParams": {"pin": "1", "n": 5}}\n\n{"to": "+30691"}\n',
    )
    rows = list(read_rows(path))
    assert [(r.index, r.line, r.to, r.params) for r in rows] == [
        (0, 1, "+306912345678", {"pin": "1", "n": "5"}),
        (1, 3, "+30691", {}),
    ]


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("a.csv", "", "empty"),
        ("a.csv", "phone,pin\n+30,1\n", "no 'to' column"),
        ("a.csv", "to,pin\n+306912345678\n", "row 1 (line 2): 1 cells"),
        ("a.csv", "to,pin,pin\n", "repeated"),
        ("a.jsonl", '{"to": "+30"}\nnot json\n', "row 2 (line 2): not valid JSON"),
        ("a.jsonl", "[1]\n", "expected a JSON object"),
        ("a.jsonl", '{"templateParams": {}}\n', "'to' is missing"),
        ("a.jsonl", '{"to": "+30", "templateParams": {"a": [1]}}\n', "parameter a"),
        ("a.jsonl", '{"to": "+30", "extra": 1}\n', "unknown keys"),
        ("a.xml", "<a/>", "unknown input format"),
    ],
)
def test_bad_input_names_row_and_reason(tmp_path: Path, name: str, text: str, reason: str) -> None:
    with pytest.raises(InputError, match=re.escape(reason)):
        list(read_rows(write(tmp_path, name, text)))


def test_unreadable_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        list(read_rows(tmp_path / "missing.csv"))
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"to\n\xff\xfe\xfa\n")
    with pytest.raises(InputError, match="not UTF-8"):
        list(read_rows(binary))


def test_journal_records_and_resumes(tmp_path: Path) -> None:
    path = tmp_path / "j.journal"
    journal = Journal.open(path, FINGERPRINT)
    journal.record_pending(0, "+306912345678", 11)
    journal.record_pending(1, "+306912345679", 12)
    done = journal.record_outcome(
        0, state="sent", tracking_id="t0", status="QUEUED", error=None, attempts=1
    )
    assert done.output_line() == {
        "index": 0, "to": "+306912345678", "seq": 11, "ok": True, "trackingId": "t0",
        "status": "QUEUED", "error": None, "attempts": 1,
    }  # fmt: skip
    journal.close()

    reopened = Journal.open(path, FINGERPRINT)
    assert reopened.mark_stale_pending_unknown() == 1  # row 1 was in flight when "the run died"
    known = reopened.known()
    assert known[0].state == "sent"
    assert known[1].state == "unknown"
    assert known[1].seq == 12
    assert not known[1].emitted
    assert reopened.counts() == {"sent": 1, "unknown": 1}
    reopened.close()


def test_journal_refuses_another_input(tmp_path: Path) -> None:
    path = tmp_path / "j.journal"
    Journal.open(path, FINGERPRINT).close()
    with pytest.raises(JournalMismatch, match="input_sha256"):
        Journal.open(path, {**FINGERPRINT, "input_sha256": "other"})


def test_fingerprint_changes_with_content(tmp_path: Path) -> None:
    a = write(tmp_path, "a.csv", "to\n+306912345678\n")
    first = fingerprint_file(a)
    a.write_text("to\n+306912345679\n")
    assert fingerprint_file(a) != first


def test_jsonl_numbers_are_kept_as_written(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "in.jsonl",
        '{"to": "+306912345678", "templateParams": '
        '{"pin": 12345678901234567890123, "n": 1e3, "m": -0.50, "k": 7}}\n',
    )
    (row,) = read_rows(path)
    assert row.params == {"pin": "12345678901234567890123", "n": "1e3", "m": "-0.50", "k": "7"}
    assert all(type(value) is str for value in row.params.values())


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"to": "+30", "templateParams": {"n": NaN}}\n', "row 1 (line 1): parameter n: NaN"),
        ('{"to": "+30", "templateParams": {"n": -Infinity}}\n', "parameter n: -Infinity"),
        ('{"to": 306912345678}\n', "'to' is missing or not a string"),
    ],
)
def test_jsonl_values_that_cannot_be_sent_as_written_are_refused(
    tmp_path: Path, text: str, reason: str
) -> None:
    with pytest.raises(InputError, match=re.escape(reason)):
        list(read_rows(write(tmp_path, "a.jsonl", text)))


def big_csv(tmp_path: Path, rows: int) -> Path:
    """A CSV of several 1 MiB chunks."""
    path = tmp_path / "big.csv"
    path.write_text("to,pin\n" + "".join(f"+3069{i:08d},{i:060d}\n" for i in range(rows)))
    return path


def test_the_second_read_of_a_snapshot_gives_the_rows_checked(tmp_path: Path) -> None:
    path = big_csv(tmp_path, 60_000)  # about 4.6 MiB
    snapshot = InputSnapshot(path)
    first = list(snapshot.first_read())
    assert snapshot.sha256 == fingerprint_file(path)
    assert list(snapshot.rows()) == first


@pytest.mark.parametrize("edit", ["rewrite", "append", "truncate"])
def test_a_snapshot_refuses_bytes_changed_after_the_check(tmp_path: Path, edit: str) -> None:
    path = big_csv(tmp_path, 60_000)
    snapshot = InputSnapshot(path)
    checked = list(snapshot.first_read())
    data = path.read_bytes()
    if edit == "rewrite":  # one digit changed in the fourth MiB, in place
        at = 3 * (1 << 20) + 100
        path.write_bytes(data[:at] + (b"7" if data[at : at + 1] != b"7" else b"8") + data[at + 1 :])
    elif edit == "append":
        path.write_bytes(data + b"+306999999999,1\n")
    else:
        path.write_bytes(data[: len(data) - 1000])
    again: list[InputRow] = []
    with pytest.raises(InputChanged, match="changed after it was checked"):
        again.extend(snapshot.rows())
    assert again == checked[: len(again)]  # only rows read from checked bytes came out
    if edit == "rewrite":
        assert 0 < len(again) < len(checked)
