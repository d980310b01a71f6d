"""The recorded transport: ccxt's own HTTP error mapping on injected faults, recordings on disk."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import ccxt.async_support as ccxt
import pytest

from jobs.exchanges import ExchangeAdapter, create_adapter
from jobs.replay import RecordedTransport, Recording, open_recording, write_recordings

SYMBOL = "BTC/USDT:USDT"
DAY = 86_400_000
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def binance(shared_data: Path) -> AsyncIterator[ExchangeAdapter]:
    adapter = create_adapter("binanceusdm", replay_dir=shared_data)
    yield adapter
    await adapter.close()


def _transport(adapter: ExchangeAdapter) -> RecordedTransport:
    assert adapter.transport is not None
    return adapter.transport


async def _one_day_of_candles(adapter: ExchangeAdapter, until: int | None = None) -> int:
    now = adapter.now_ms() if until is None else until
    return sum([len(p) async for p in adapter.fetch_candles(SYMBOL, "5m", now - DAY, now)])


@pytest.mark.parametrize(
    ("fault", "body", "expected"),
    [
        ("timeout", None, ccxt.RequestTimeout),
        ("disconnect", None, ccxt.ExchangeNotAvailable),
        (429, None, ccxt.DDoSProtection),  # ccxt binance maps 418/429 to DDoSProtection
        (429, "", ccxt.DDoSProtection),
        (418, None, ccxt.DDoSProtection),  # IP ban
        (500, "", ccxt.ExchangeNotAvailable),
        (503, "Service Unavailable", ccxt.ExchangeNotAvailable),
        (504, "", ccxt.RequestTimeout),
        (400, '{"code":-1121,"msg":"Invalid symbol."}', ccxt.BadSymbol),
        (
            400,
            '{"code":-1130,"msg":"Data sent for parameter \'limit\' is not valid."}',
            ccxt.BadRequest,
        ),
        (
            401,
            '{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}',
            ccxt.AuthenticationError,
        ),
        ("malformed_json", None, ccxt.BadResponse),
    ],
)
async def test_injected_faults_raise_ccxt_exception_types(
    binance: ExchangeAdapter, fault: int | str, body: str | None, expected: type[Exception]
) -> None:
    clean = await _one_day_of_candles(binance)
    _transport(binance).inject("/fapi/v1/klines", fault, body=body)
    with pytest.raises(expected) as excinfo:
        await _one_day_of_candles(binance)
    transient = isinstance(excinfo.value, ccxt.NetworkError)
    assert transient == (fault in ("timeout", "disconnect", 429, 418, 500, 503, 504))
    # the injection is used up: the same call now succeeds with the recorded bars
    assert await _one_day_of_candles(binance) == clean == 287  # 288 bars a day, last one open


async def test_injection_counts_matches_and_leaves_other_paths_alone(
    binance: ExchangeAdapter,
) -> None:
    transport = _transport(binance)
    clean = await _one_day_of_candles(binance)
    injection = transport.inject("klines", "timeout", times=2)
    for _ in range(2):
        with pytest.raises(ccxt.RequestTimeout):
            await _one_day_of_candles(binance)
    assert (injection.hits, injection.active) == (2, False)
    assert await _one_day_of_candles(binance) == clean

    forever = transport.inject("openInterestHist", ccxt.ExchangeNotAvailable("down"), times=None)
    now = binance.now_ms()
    for _ in range(3):
        with pytest.raises(ccxt.ExchangeNotAvailable, match="down"):
            await anext(binance.fetch_open_interest(SYMBOL, "5m", now - DAY, now))
    assert forever.active and forever.hits == 3
    assert await _one_day_of_candles(binance) == clean  # klines unaffected
    transport.clear_faults()
    assert [len(p) async for p in binance.fetch_open_interest(SYMBOL, "5m", now - DAY, now)]


async def test_payload_rewrite_reaches_the_adapter(binance: ExchangeAdapter) -> None:
    def swap_high_low(klines: list[list[object]]) -> list[list[object]]:
        first = list(klines[0])
        first[2], first[3] = first[3], first[2]
        return [first, *klines[1:]]

    now = binance.now_ms()
    clean = (await anext(binance.fetch_candles(SYMBOL, "5m", now - DAY, now)))[0]
    _transport(binance).inject("klines", swap_high_low)
    bad = (await anext(binance.fetch_candles(SYMBOL, "5m", now - DAY, now)))[0]
    assert (bad.high, bad.low) == (clean.low, clean.high)


async def test_requests_are_logged_by_method_path_and_params(binance: ExchangeAdapter) -> None:
    await _one_day_of_candles(binance)
    keys = [r.key for r in _transport(binance).requests]
    assert keys[0] == "GET /fapi/v1/exchangeInfo"
    assert keys[1].startswith("GET /fapi/v1/klines?symbol=BTCUSDT&interval=5m&startTime=")


async def test_open_interest_older_than_30_days_is_refused_like_fapi(
    binance: ExchangeAdapter,
) -> None:
    await binance.load_markets([SYMBOL])
    too_old = binance.now_ms() - 31 * DAY
    with pytest.raises(ccxt.BadRequest, match="startTime"):
        await binance.exchange.fapiDataGetOpenInterestHist(
            {"symbol": "BTCUSDT", "period": "5m", "startTime": too_old}
        )


async def test_prebuilt_recordings_replay_like_the_shared_folder(
    shared_data: Path, tmp_path: Path
) -> None:
    paths = write_recordings(shared_data, tmp_path, ["binanceusdm"])
    assert [p.name for p in paths] == ["binanceusdm.recording.json"]
    live_like = create_adapter("binanceusdm", replay_dir=shared_data)
    from_files = create_adapter("binanceusdm", replay_dir=tmp_path)
    try:
        assert from_files.now_ms() == live_like.now_ms()
        now = live_like.now_ms()
        since = now - 29 * DAY
        a = [r async for p in live_like.fetch_candles(SYMBOL, "5m", since, now) for r in p]
        b = [r async for p in from_files.fetch_candles(SYMBOL, "5m", since, now) for r in p]
        assert a == b and len(a) > 8000
    finally:
        await live_like.close()
        await from_files.close()


@pytest.mark.integration  # runs the installed command in a process of its own
def test_build_script_writes_every_exchange(shared_data: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "build_recordings.py"),
            "--shared-data",
            str(shared_data),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "binanceusdm.recording.json",
        "bybit.recording.json",
        "hyperliquid.recording.json",
        "okx.recording.json",
    ], done.stdout
    for path in tmp_path.iterdir():
        recording = Recording.load(path)
        assert recording.now_ms == open_recording(shared_data, "binanceusdm").now_ms
        assert recording.metadata["values"] and recording.metadata["derived"]


@pytest.mark.parametrize(
    ("exchange_id", "path"),
    [
        ("bybit", "/v5/market/kline"),  # 429 body retCode 10006
        ("okx", "/api/v5/market/history-candles"),  # 429 body code 50011
    ],
)
async def test_v5_venues_map_faults_and_never_skip_an_unparseable_page(
    shared_data: Path,
    exchange_id: str,
    path: str,
) -> None:
    adapter = create_adapter(exchange_id, replay_dir=shared_data, replay_window="venues-2026-01")
    try:
        # the day before each venue's last recorded bar (OKX's 1m capture ends 2026-01-16)
        assert adapter.recording is not None
        last = max(
            int(r[0]) for k, rows in adapter.recording.series.items() if ":5m" in k for r in rows
        )
        until = last + 300_000
        clean = await _one_day_of_candles(adapter, until)
        _transport(adapter).inject(path, 429)
        with pytest.raises(ccxt.RateLimitExceeded):
            await _one_day_of_candles(adapter, until)
        # ccxt's v5 parsers read a non-JSON body as "no rows"; the adapter refuses it instead
        _transport(adapter).inject(path, "malformed_json")
        with pytest.raises(ccxt.BadResponse, match="not JSON"):
            await _one_day_of_candles(adapter, until)
        _transport(adapter).inject(path, "timeout")
        with pytest.raises(ccxt.RequestTimeout):
            await _one_day_of_candles(adapter, until)
        assert await _one_day_of_candles(adapter, until) == clean == 288
    finally:
        await adapter.close()


def test_replay_dir_that_is_neither_kind_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"binanceusdm\.recording\.json"):
        create_adapter("binanceusdm", replay_dir=tmp_path)
