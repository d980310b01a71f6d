"""``liqmap calibrate`` on a development dataset cut from the real CoinGlass 30m file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from cli import main as cli
from cli.common import parse_epoch_ms
from engine.model import ModelParams


def main(argv: list[str]) -> int:
    """``liqmap calibrate …`` through the real command-line entry point."""
    return cli.main(["calibrate", *argv])


def test_calibrate_writes_loadable_params(shared_data: Path, tmp_path: Path, capsys) -> None:
    with (shared_data / "coinglass" / "BTC_regime_30m.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))[:360]
    files = {}
    for name, header, cols in (
        (
            "C",
            ["timestamp", "open", "high", "low", "close"],
            ["price_open", "price_high", "price_low", "price_close"],
        ),
        ("OI", ["timestamp", "open_interest_usd"], ["oi_close"]),
        (
            "L",
            ["timestamp", "long_usd", "short_usd"],
            ["liquidation_long_usd", "liquidation_short_usd"],
        ),
    ):
        path = tmp_path / f"{name}.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows([[r["timestamp"], *(r[c] for c in cols)] for r in rows])
        files[name] = path
    start = tmp_path / "start.json"
    start.write_text(json.dumps({"params": {**ModelParams().to_dict(), "leverage_levels": 8}}))
    out = tmp_path / "params.json"
    split = rows[240]["timestamp"]
    code = main(
        [
            "--dataset",
            f"dev={files['C']},{files['OI']},{files['L']}",
            "--split",
            split,
            "--out",
            str(out),
            "--start",
            str(start),
            "--passes",
            "1",
            "--params-version",
            "test-cal",
        ]
    )
    assert code == 0
    capsys.readouterr()
    written = json.loads(out.read_text())
    params = ModelParams.from_dict(written["params"])
    assert params.version == "test-cal" and params.leverage_levels == 8
    figures = written["calibration"]["datasets"]["dev"]
    assert set(figures) == {"tune", "validate"}
    assert set(figures["validate"]) == {"model", "baseline"}


def test_parse_time() -> None:
    assert parse_epoch_ms("2026-06-01T00:00:00Z") == 1780272000000
    assert parse_epoch_ms("2026-06-01") == 1780272000000
    assert parse_epoch_ms("1780272000000") == 1780272000000


def test_calibrate_needs_data(tmp_path: Path, capsys) -> None:
    assert main(["--out", str(tmp_path / "p.json")]) == 2
    assert "--shared-data" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([])


def test_only_searches_the_named_parameters(shared_data: Path, tmp_path: Path, capsys) -> None:
    with (shared_data / "coinglass" / "BTC_regime_30m.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))[:300]
    paths = []
    for name, header, cols in (
        (
            "C",
            ["open", "high", "low", "close"],
            ["price_open", "price_high", "price_low", "price_close"],
        ),
        ("OI", ["open_interest_usd"], ["oi_close"]),
        ("L", ["long_usd", "short_usd"], ["liquidation_long_usd", "liquidation_short_usd"]),
    ):
        path = tmp_path / f"{name}.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["timestamp", *header])
            writer.writerows([[r["timestamp"], *(r[c] for c in cols)] for r in rows])
        paths.append(str(path))
    start = ModelParams(leverage_levels=6, turnover_per_day=0.5, leverage_alpha=1.0)
    start_file = tmp_path / "start.json"
    start_file.write_text(json.dumps({"params": start.to_dict()}))
    common = ["--dataset", "dev=" + ",".join(paths), "--split", rows[200]["timestamp"]]
    common += ["--start", str(start_file), "--passes", "1"]
    out = tmp_path / "p.json"
    assert main([*common, "--only", "turnover_per_day", "--out", str(out)]) == 0
    fitted = ModelParams.from_dict(json.loads(out.read_text())["params"]).to_dict()
    changed = {k for k, v in fitted.items() if v != start.to_dict()[k]} - {"version"}
    assert changed <= {"turnover_per_day"}
    capsys.readouterr()
    assert main([*common, "--only", "turnover_per_day,bogus", "--out", str(out)]) == 2
    assert "bogus" in capsys.readouterr().err
