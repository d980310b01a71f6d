"""``liqmap backtest`` on CSVs cut from the real CoinGlass 30m file: scores, outputs, bad input."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from cli import main as cli

REPO = Path(__file__).resolve().parents[2]
LIQMAP = Path(sys.executable).with_name("liqmap")  # the installed console script


def main(argv: list[str]) -> int:
    """``liqmap backtest …`` through the real command-line entry point."""
    return cli.main(["backtest", *argv])


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def regime_rows(shared_data: Path) -> list[dict[str, str]]:
    with (shared_data / "coinglass" / "BTC_regime_30m.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))[:300]


@pytest.fixture
def files(tmp_path: Path, regime_rows: list[dict[str, str]]) -> dict[str, Path]:
    rows = regime_rows
    return {
        "C": write_csv(
            tmp_path / "C.csv",
            ["timestamp", "open", "high", "low", "close"],
            [
                [r["timestamp"], r["price_open"], r["price_high"], r["price_low"], r["price_close"]]
                for r in rows
            ],
        ),
        "OI": write_csv(
            tmp_path / "OI.csv",
            ["timestamp", "open_interest_usd"],
            [[r["timestamp"], r["oi_close"]] for r in rows],
        ),
        "L": write_csv(
            tmp_path / "L.csv",
            ["timestamp", "long_usd", "short_usd"],
            [[r["timestamp"], r["liquidation_long_usd"], r["liquidation_short_usd"]] for r in rows],
        ),
    }


def args(files: dict[str, Path], *extra: str) -> list[str]:
    return [
        "--candles",
        str(files["C"]),
        "--open-interest",
        str(files["OI"]),
        "--liquidations",
        str(files["L"]),
        *extra,
    ]


def read_predictions(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    data = np.loadtxt(path, delimiter=",", skiprows=1)
    assert path.read_text().splitlines()[0] == "timestamp,predicted_long_usd,predicted_short_usd"
    return data[:, 0].astype(np.int64), data[:, 1], data[:, 2]


def test_json_report_scores_the_written_predictions(
    files: dict[str, Path], regime_rows: list[dict[str, str]], tmp_path: Path, capsys
) -> None:
    out = tmp_path / "pred.csv"
    assert main(args(files, "--json", "--predictions", str(out), "--warmup", "48")) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"bars", "model", "baseline", "params"}
    assert report["bars"] == len(regime_rows) - 48
    ts, pred_long, pred_short = read_predictions(out)
    assert ts.tolist() == [int(r["timestamp"]) for r in regime_rows]
    real_long = np.array([float(r["liquidation_long_usd"]) for r in regime_rows])
    real_short = np.array([float(r["liquidation_short_usd"]) for r in regime_rows])
    # independent scoring of the written file with scipy
    for side, pred, real in (("long", pred_long, real_long), ("short", pred_short, real_short)):
        want_p = stats.pearsonr(pred[48:], real[48:]).statistic
        want_s = stats.spearmanr(pred[48:], real[48:]).statistic
        assert report["model"][side]["pearson"] == pytest.approx(want_p, rel=1e-9)
        assert report["model"][side]["spearman"] == pytest.approx(want_s, rel=1e-9)
    # the baseline exactly as specified, computed here from the raw rows
    o = np.array([float(r["price_open"]) for r in regime_rows])
    lo = np.array([float(r["price_low"]) for r in regime_rows])
    hi = np.array([float(r["price_high"]) for r in regime_rows])
    oi = np.array([float(r["oi_close"]) for r in regime_rows])
    base_long = oi[47:-1] * np.maximum(0, (o[48:] - lo[48:]) / o[48:])
    base_short = oi[47:-1] * np.maximum(0, (hi[48:] - o[48:]) / o[48:])
    assert report["baseline"]["long"]["spearman"] == pytest.approx(
        stats.spearmanr(base_long, real_long[48:]).statistic, rel=1e-9
    )
    assert report["baseline"]["short"]["pearson"] == pytest.approx(
        stats.pearsonr(base_short, real_short[48:]).statistic, rel=1e-9
    )
    assert report["params"]["version"]


def test_predictions_do_not_depend_on_realized_liquidations(
    files: dict[str, Path], tmp_path: Path, capsys
) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    assert main(args(files, "--predictions", str(first))) == 0
    rows = list(csv.reader(files["L"].open()))
    write_csv(files["L"], rows[0], [[r[0], "0", "0"] for r in rows[1:]])
    assert main(args(files, "--predictions", str(second))) == 0
    assert first.read_bytes() == second.read_bytes()
    capsys.readouterr()


def test_gaps_and_other_bar_lengths_are_fine(files: dict[str, Path], tmp_path: Path) -> None:
    # drop a block of rows from all three files: a 10-hour gap
    for key in ("C", "OI", "L"):
        rows = list(csv.reader(files[key].open()))
        write_csv(files[key], rows[0], rows[1:100] + rows[120:])
    out = tmp_path / "p.csv"
    assert main(args(files, "--predictions", str(out), "--json")) == 0
    ts, pred_long, _ = read_predictions(out)
    assert len(ts) == 280 and np.all(np.isfinite(pred_long))


BAD_CASES = [
    ("C", lambda rows: [[c for i, c in enumerate(r) if i != 3] for r in rows], "C.csv", 1, "low"),
    ("OI", lambda rows: [rows[0], rows[2], rows[1], *rows[3:]], "OI.csv", 3, "timestamp"),
    (
        "C",
        lambda rows: [*rows[:5], [rows[5][0], "nan", *rows[5][2:]], *rows[6:]],
        "C.csv",
        6,
        "open",
    ),
    (
        "OI",
        lambda rows: [*rows[:7], [rows[7][0], "-5"], *rows[8:]],
        "OI.csv",
        8,
        "open_interest_usd",
    ),
    (
        "L",
        lambda rows: [*rows[:9], [str(int(rows[9][0]) + 1), *rows[9][1:]], *rows[10:]],
        "L.csv",
        10,
        "timestamp",
    ),
    ("L", lambda rows: rows[:-1], "C.csv", 301, "timestamp"),
    (
        "C",
        lambda rows: [*rows[:4], [rows[4][0], rows[4][1], "1", "2", rows[4][4]], *rows[5:]],
        "C.csv",
        5,
        "high",
    ),
]


@pytest.mark.parametrize(("key", "mutate", "file", "row", "column"), BAD_CASES)
def test_bad_input_names_file_row_column_and_writes_nothing(
    files: dict[str, Path], tmp_path: Path, capsys, key, mutate, file, row, column
) -> None:
    rows = list(csv.reader(files[key].open()))
    mutated = mutate(rows)
    write_csv(files[key], mutated[0], mutated[1:])
    out = tmp_path / "pred.csv"
    assert main(args(files, "--predictions", str(out), "--json")) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert file in captured.err and f"row {row}" in captured.err
    assert f"column '{column}'" in captured.err
    assert not out.exists()


def test_empty_and_header_only_files(files: dict[str, Path], tmp_path: Path, capsys) -> None:
    out = tmp_path / "pred.csv"
    files["OI"].write_text("")
    assert main(args(files, "--predictions", str(out))) == 2
    assert "OI.csv" in capsys.readouterr().err and not out.exists()
    files["OI"].write_text("timestamp,open_interest_usd\n")
    assert main(args(files, "--predictions", str(out))) == 2
    assert "no data rows" in capsys.readouterr().err and not out.exists()


def test_files_from_spreadsheets_and_unknown_optional_cells_are_read(
    files: dict[str, Path], tmp_path: Path, regime_rows: list[dict[str, str]]
) -> None:
    """A UTF-8 BOM and CRLF line ends (spreadsheet exports), and empty optional volume cells."""
    plain_out, odd_out = tmp_path / "plain.csv", tmp_path / "odd.csv"
    assert main(args(files, "--predictions", str(plain_out))) == 0
    rows = list(csv.reader(files["C"].open()))
    with files["C"].open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow([*rows[0], "volume", "taker_buy_volume"])
        for r in rows[1:]:  # volumes unknown everywhere: the even side split does not use them
            writer.writerow([*r, "", ""])
    assert files["C"].read_bytes().startswith(b"\xef\xbb\xbf")
    assert main(args(files, "--predictions", str(odd_out))) == 0
    assert odd_out.read_bytes() == plain_out.read_bytes()


def test_unreadable_input_and_output_fail_cleanly(
    files: dict[str, Path], tmp_path: Path, capsys
) -> None:
    files["L"].write_bytes(b"timestamp,long_usd,short_usd\n\xff\xfe1,2,3\n")
    assert main(args(files, "--json")) == 2
    err = capsys.readouterr().err
    assert "L.csv" in err and "UTF-8" in err and "Traceback" not in err
    out_dir = tmp_path / "predictions"
    out_dir.mkdir()
    files["L"] = files["C"].with_name("L2.csv")
    rows = list(csv.reader(files["C"].open()))
    write_csv(files["L"], ["timestamp", "long_usd", "short_usd"], [[r[0], 0, 0] for r in rows[1:]])
    assert main(args(files, "--predictions", str(out_dir))) == 2
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("predictions")) == [
        "predictions"
    ]  # no half-written predictions.tmp left behind


@pytest.mark.integration  # runs the installed command in a process of its own
def test_console_script_entry_point(files: dict[str, Path]) -> None:
    proc = subprocess.run(
        [str(LIQMAP), "backtest", *args(files, "--json")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["bars"] == 300 - 48


def test_score_from_scores_only_the_held_out_bars(
    files: dict[str, Path], regime_rows: list[dict[str, str]], capsys
) -> None:
    cut = int(regime_rows[200]["timestamp"])
    assert main(args(files, "--json", "--score-from", str(cut))) == 0
    held_out = json.loads(capsys.readouterr().out)
    assert held_out["bars"] == 100  # rows 200..299
    # the same as skipping the first 200 bars by count: earlier bars only warm the model up
    assert main(args(files, "--json", "--warmup", "200")) == 0
    assert json.loads(capsys.readouterr().out) == held_out
    assert main(args(files, "--score-from", "2999-01-01")) == 2
    assert "no bar" in capsys.readouterr().err


def test_fast_reader_equals_the_row_by_row_reader(shared_data: Path) -> None:
    """pyarrow + numpy (well-formed files) and the careful reader give the same table."""
    from cli.backtest import _read_rows, read_table

    path = shared_data / "binance" / "BTCUSDT_perp_5m_klines_oi_funding.csv"
    want = ["price_open", "price_high", "price_low", "price_close", "open_interest_usd"]
    opt = ["taker_net_vol_base"]  # empty on a few bars: NaN
    fast = read_table(path, want, opt, positive=want[:4])
    with path.open(newline="", encoding="utf-8-sig") as handle:
        slow = _read_rows(path, handle, want, opt, want[:4], [])
    assert np.array_equal(fast.timestamp, slow.timestamp)
    assert np.array_equal(fast.file_row, slow.file_row)
    for name in (*want, *opt):
        np.testing.assert_array_equal(fast.columns[name], slow.columns[name])
    assert np.isnan(fast.columns["taker_net_vol_base"]).sum() > 0


def test_blank_lines_and_written_nan_keep_exact_rows(files: dict[str, Path], capsys) -> None:
    """Blank lines count in row numbers; ``nan`` written in an optional cell is not 'unknown'."""
    lines = files["OI"].read_text().splitlines()
    bad = lines[30].split(",")[0] + ",-1"
    files["OI"].write_text("\n".join([*lines[:5], "", *lines[5:30], bad, *lines[31:]]) + "\n")
    assert main(args(files)) == 2
    err = capsys.readouterr().err
    assert "OI.csv, row 32, column 'open_interest_usd'" in err  # 30 + header + the blank line
    lines = files["C"].read_text().splitlines()
    rows = [lines[0] + ",volume"] + [
        f"{r},{'nan' if i == 9 else ''}" for i, r in enumerate(lines[1:])
    ]
    files["C"].write_text("\n".join(rows) + "\n")
    assert main(args(files)) == 2
    assert "C.csv, row 11, column 'volume'" in capsys.readouterr().err


@pytest.mark.integration  # a process of its own, as a user runs it
def test_backtest_imports_no_database_or_api_code(files: dict[str, Path]) -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cli", "backtest", *args(files, "--json")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    imported = {
        line.split("|")[-1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "engine.model" in imported, sorted(imported)  # the probe works
    top = {name.split(".")[0] for name in imported}
    heavy = {"sqlalchemy", "strawberry", "api", "models", "jobs", "pandas", "scipy", "pydantic"}
    assert not top & heavy, sorted(top & heavy)
