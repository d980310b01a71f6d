"""A damaged recording is refused with one line naming the file and the line.

The damage is done to a copy of the real Binance BTC file of ``../shared/data`` (the rest of the
folder is linked): a row repeated (a duplicate timestamp, which was silently reduced to its first
copy), rows swapped, the file cut off in the middle of its last row (which ended in a 51-line
traceback), a JSON recording and the Hyperliquid JSON-lines file cut off. The CLI is the real
``liqmap up --replay DIR --once``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.errors import RecordingError
from jobs.replay.recording import Recording
from jobs.replay.source import BINANCE_BTC, HYPERLIQUID_LEVELS, load_shared_data
from tests.conftest import create_database, drop_database

LIQMAP = Path(sys.executable).with_name("liqmap")


def damaged_copy(shared_data: Path, tmp_path: Path, edit: object) -> tuple[Path, Path]:
    """``tmp_path/data``: the shared folder linked entry by entry, with the Binance BTC file
    copied and passed through ``edit`` (its lines, header first -> new lines)."""
    root = tmp_path / "data"
    root.mkdir(parents=True)
    for entry in shared_data.iterdir():
        if entry.name != "binance":
            (root / entry.name).symlink_to(entry)
    (root / "binance").mkdir()
    for entry in (shared_data / "binance").iterdir():
        if entry.name != BINANCE_BTC.name:
            (root / "binance" / entry.name).symlink_to(entry)
    lines = (shared_data / BINANCE_BTC).read_text().splitlines(keepends=True)
    target = root / BINANCE_BTC
    target.write_text("".join(edit(lines)))  # type: ignore[operator]
    return root, target


def load(root: Path) -> str:
    # every damaged copy is a folder of its own, and a load that raises is never cached, so
    # the cache (and the real folder's entry the other tests share) needs no clearing
    with pytest.raises(RecordingError) as refused:
        load_shared_data(root)
    return str(refused.value)


@pytest.mark.unit
def test_a_repeated_timestamp_is_refused_with_both_lines(shared_data: Path, tmp_path: Path) -> None:
    # line numbers as an editor shows them: the header is line 1, data row k is line k + 1
    root, path = damaged_copy(
        shared_data, tmp_path, lambda lines: [*lines[:101], lines[100], *lines[101:]]
    )
    message = load(root)
    stamp = path.read_text().splitlines()[100].split(",")[0]
    assert message == (
        f"{path}: line 102: timestamp {stamp} repeats the one on line 101 ({stamp}); every row "
        "must be after the one before"
    )
    # the same timestamp with other values (two captures disagreeing) is refused too
    root2, path2 = damaged_copy(
        shared_data,
        tmp_path / "b",
        lambda lines: [*lines[:11], lines[10].replace(",", ",9", 3), *lines[11:]],
    )
    assert f"{path2}: line 12: timestamp" in load(root2)


@pytest.mark.unit
def test_rows_out_of_order_are_refused(shared_data: Path, tmp_path: Path) -> None:
    root, path = damaged_copy(
        shared_data, tmp_path, lambda lines: [*lines[:50], lines[51], lines[50], *lines[52:]]
    )
    assert load(root).startswith(f"{path}: line 52: timestamp ")
    assert "is before the one on line 51" in load(root)


@pytest.mark.unit
def test_a_file_cut_off_mid_row_is_refused_at_its_last_line(
    shared_data: Path, tmp_path: Path
) -> None:
    def cut(lines: list[str]) -> list[str]:
        last = lines[-1]
        return [*lines[:-1], last[: last.index(",", last.index(",") + 1) + 4]]  # in price_open

    root, path = damaged_copy(shared_data, tmp_path, cut)
    count = len(path.read_text().splitlines())
    message = load(root)
    assert message.startswith(f"{path}: line {count}: ")
    assert "fields expected" in message and "truncated" in message

    def emptied(lines: list[str]) -> list[str]:  # every field there, a price empty
        fields = lines[7].split(",")
        fields[4] = ""
        return [*lines[:7], ",".join(fields), *lines[8:]]

    root2, path2 = damaged_copy(shared_data, tmp_path / "b", emptied)
    assert load(root2) == (
        f"{path2}: line 8: price_low is '', not a number (the file is truncated or the row is "
        "malformed)"
    )


@pytest.mark.unit
def test_truncated_json_recordings_are_refused_with_the_place(tmp_path: Path) -> None:
    path = Recording("okx", 1, {"windows": {}}, {}, {"k": [[1, "2"]]}).save(tmp_path)
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(RecordingError) as refused:
        Recording.load(path)
    assert str(refused.value).startswith(f"{path}: line 1 column {len(text) // 2 + 1}: ")

    from jobs.replay.source import _json_lines

    lines = tmp_path / "levels.jsonl"
    lines.write_text(json.dumps({"a": 1}) + "\n" + json.dumps({"b": 2})[:5] + "\n")
    with pytest.raises(RecordingError, match=rf"^{lines}: line 2: "):
        _json_lines(lines)
    assert HYPERLIQUID_LEVELS.suffix == ".jsonl"  # the file this reader serves


def test_liqmap_up_says_one_line_and_exits_2(
    shared_data: Path, tmp_path: Path, server_url: str
) -> None:
    root, path = damaged_copy(
        shared_data, tmp_path, lambda lines: [*lines[:201], lines[200], *lines[201:]]
    )
    url = create_database(server_url, "liqmap_test_damage")
    try:
        result = subprocess.run(
            [str(LIQMAP), "up", "--replay", str(root), "--once"],
            env={"DATABASE_URL": url, "PATH": "/usr/bin:/bin", "LIQMAP_LOG_LEVEL": "WARNING"},
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        drop_database(server_url, url)
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert errors == [
        f"liqmap: error: {path}: line 202: timestamp " + errors[0].split("timestamp ")[1]
    ]
    assert "repeats the one on line 201" in errors[0]
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert len(result.stderr.splitlines()) <= 5, result.stderr
