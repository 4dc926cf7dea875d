"""send-many's input reader and journal, without the network."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from routee_viber_async.cli._input import InputError, fingerprint_file, read_rows
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
