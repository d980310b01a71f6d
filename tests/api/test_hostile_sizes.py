"""Hostile sizes, instants and cursors through the real app (ASGI, real PostgreSQL, data the real
jobs stored): a huge ``bucketSize`` is a small, fast answer whose numbers are the stored ones
summed by hand; absurd ranges, instants near year 1 or 9999 and garbage cursors are refused
with ``BAD_USER_INPUT``/``RANGE_TOO_LARGE`` — each within 2 s, never ``INTERNAL``."""

from __future__ import annotations

import base64
import time
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from graphql import GraphQLList, GraphQLNonNull, Undefined, build_schema

from tests.api.conftest import GraphQLClient
from tests.api.pipeline import Stored
from tests.reliability.harness import REPO

SCHEMA = build_schema((REPO / "schema.graphql").read_text())
CLIENT_CODES = {"BAD_USER_INPUT", "RANGE_TOO_LARGE", "NOT_FOUND", "GRAPHQL_VALIDATION_FAILED"}
HUGE_BUCKETS = (1e9, 5e11)  # the sizes that froze (8.4 s, 23 GB) or failed (MemoryError)


def codes(body: dict[str, Any]) -> set[str]:
    return {(e.get("extensions") or {}).get("code") for e in body.get("errors") or []}


async def timed(gql: GraphQLClient, query: str, **variables: Any) -> dict[str, Any]:
    """The answer, which must come within 2 s and carry only client-error codes."""
    started = time.perf_counter()
    body = await gql(query, **variables)
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0, f"{elapsed:.2f} s for {variables}"
    assert codes(body) <= CLIENT_CODES, body
    return body


HEATMAP = """
query ($start: DateTime!, $end: DateTime, $b: Float, $lo: Float, $hi: Float, $i: Interval) {
  heatmap(symbol: "BTC/USDT:USDT", start: $start, end: $end, bucketSize: $b, priceMin: $lo,
          priceMax: $hi, interval: $i) {
    columns rows priceMin priceStep long short filledColumns } }"""


@pytest.mark.parametrize("bucket", HUGE_BUCKETS)
async def test_a_huge_bucket_heatmap_is_one_row_of_the_stored_sums(
    gql: GraphQLClient, stored: Stored, bucket: float
) -> None:
    end = stored.latest("all").at.replace(minute=0)
    start = end - timedelta(hours=24)
    body = await timed(
        gql, HEATMAP, start=start.isoformat(), end=end.isoformat(), b=bucket, i="FIVE_MINUTES"
    )
    data = body["data"]["heatmap"]
    # every traded price lies in [0, bucket): one row, whose cells are whole snapshots summed
    assert (data["rows"], data["columns"], data["priceMin"], data["priceStep"]) == (
        1,
        288,
        0.0,
        bucket,
    )
    row = np.frombuffer(base64.b64decode(data["long"]), "<f4")
    by_close = {s.at: s for s in stored.snapshots("all", "5m") if start < s.at <= end}
    want = [
        float(by_close[start + timedelta(minutes=5 * (j + 1))].long_usd.sum()) for j in range(288)
    ]
    np.testing.assert_allclose(row, want, rtol=1e-6)
    assert min(want) > 0


@pytest.mark.parametrize("bucket", HUGE_BUCKETS)
async def test_huge_bucket_levels_and_snapshots_are_small_and_fast(
    gql: GraphQLClient, stored: Stored, bucket: float
) -> None:
    latest = stored.latest("all")
    body = await timed(
        gql,
        """query ($b: Float) { liquidationLevels(symbol: "BTC/USDT:USDT", bucketSize: $b) {
             at bucketSize levels { price longUsd shortUsd } } }""",
        b=bucket,
    )
    levels = body["data"]["liquidationLevels"]["levels"]
    assert [lv["price"] for lv in levels] == [0.0]
    assert levels[0]["longUsd"] == pytest.approx(
        float(latest.long_usd.sum(dtype=np.float64)), rel=1e-9
    )
    assert levels[0]["shortUsd"] == pytest.approx(
        float(latest.short_usd.sum(dtype=np.float64)), rel=1e-9
    )

    hourly = stored.snapshots("all", "1h")
    start = hourly[-30].at
    body = await timed(
        gql,
        """query ($s: DateTime!, $b: Float) {
             snapshots(symbol: "BTC/USDT:USDT", start: $s, bucketSize: $b, first: 24) {
               edges { node { at levels { price longUsd } } } } }""",
        s=start.isoformat(),
        b=bucket,
    )
    edges = body["data"]["snapshots"]["edges"]
    assert len(edges) == 24
    by_close = {s.at.isoformat(): s for s in hourly}
    for edge in edges:
        node = edge["node"]
        assert [lv["price"] for lv in node["levels"]] == [0.0]
        want = float(by_close[node["at"]].long_usd.sum(dtype=np.float64))
        assert node["levels"][0]["longUsd"] == pytest.approx(want, rel=1e-9)


async def test_absurd_buckets_and_ranges_are_refused_fast(
    gql: GraphQLClient, stored: Stored
) -> None:
    end = stored.latest("all").at.replace(minute=0)
    start = (end - timedelta(hours=6)).isoformat()
    refusals = [
        (HEATMAP, {"start": start, "b": 1e300}, "BAD_USER_INPUT"),
        (HEATMAP, {"start": start, "b": 5e13 + 1}, "BAD_USER_INPUT"),  # not a grid multiple
        (HEATMAP, {"start": start, "lo": 0.0, "hi": 1e308}, "RANGE_TOO_LARGE"),
        (HEATMAP, {"start": start, "lo": 0.0, "hi": 1e308, "b": 5e11}, "RANGE_TOO_LARGE"),
        (HEATMAP, {"start": "1970-01-01T00:00:00Z", "end": "2199-12-31T00:00:00Z"}, None),
        (
            """query ($b: Float, $lo: Float, $hi: Float) { liquidationLevels(
                 symbol: "BTC/USDT:USDT", bucketSize: $b, priceMin: $lo, priceMax: $hi) {
                 price } }""",
            {"b": 50.0, "lo": 0.0, "hi": 1.7e308},
            "RANGE_TOO_LARGE",
        ),
    ]
    for query, variables, code in refusals:
        body = await timed(gql, query, **variables)
        assert body.get("errors"), variables
        if code is not None:
            assert codes(body) == {code}, (variables, body)
        else:
            assert codes(body) == {"RANGE_TOO_LARGE"}, (variables, body)


EXTREME_INSTANTS = (
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+05:00",  # year 0 in UTC
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-05:00",  # year 10000 in UTC
    "1969-12-31T23:59:59Z",
    "2200-01-01T00:00:00Z",
)
VALID = {
    "symbol": "BTC/USDT:USDT",
    "exchange": "binanceusdm",
    "start": "2026-06-10T00:00:00+00:00",
    "withinPct": 5.0,
    "minUsd": 1.0,
}


def _named(type_: Any) -> Any:
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    return type_


def datetime_arguments() -> list[tuple[str, str, str, str]]:
    """(field, DateTime argument, document, literal document) for every root query field: the
    document passes the argument as ``$v``, the literal one as year 1 written in it; both pass
    every required argument a valid value (as variables)."""
    out = []
    for field_name, field in SCHEMA.query_type.fields.items():  # type: ignore[union-attr]
        for arg_name, arg in field.args.items():
            if _named(arg.type).name != "DateTime":
                continue
            declared, passed = [], []
            for other, spec in field.args.items():
                required = spec.default_value is Undefined and not (
                    spec.ast_node and spec.ast_node.default_value
                )
                if other != arg_name and isinstance(spec.type, GraphQLNonNull) and required:
                    assert other in VALID, (field_name, other)
                    declared.append(f"${other}: {spec.type}")
                    passed.append(f"{other}: ${other}")

            def document(value: str, declared: list[str], passed: list[str]) -> str:
                args = ", ".join([*passed, f"{arg_name}: {value}"])  # noqa: B023
                head = f"query ({', '.join(declared)}) " if declared else "query "
                return head + f"{{ {field_name}({args}) {{ __typename }} }}"  # noqa: B023

            out.append(
                (
                    field_name,
                    arg_name,
                    document("$v", [*declared, f"$v: {arg.type}"], passed),
                    document('"0001-01-01T00:00:00Z"', declared, passed),
                )
            )
    return out


async def test_extreme_instants_are_bad_user_input_everywhere(gql: GraphQLClient) -> None:
    cases = datetime_arguments()
    fields = {f for f, *_ in cases}
    assert {"heatmap", "snapshots", "liquidationMap", "candles", "longShortSeries"} <= fields
    for field, arg, document, literal in cases:
        variables = {k: v for k, v in VALID.items() if f"${k}:" in document}
        for instant in EXTREME_INSTANTS:
            body = await timed(gql, document, **variables, v=instant)
            assert codes(body) == {"BAD_USER_INPUT"}, (field, arg, instant, body)
            assert "1970-01-01" in body["errors"][0]["message"], body
        # the same written in the document itself
        body = await timed(gql, literal, **variables)
        assert codes(body) == {"BAD_USER_INPUT"}, (field, arg, literal, body)
    # the edges themselves are accepted (an empty or refused range, not an error of the instant)
    body = await timed(
        gql,
        'query ($s: DateTime!) { candles(symbol: "BTC/USDT:USDT", exchange: "binanceusdm", '
        'start: $s, end: "1970-01-02T00:00:00Z") { ts } }',
        s="1970-01-01T00:00:00Z",
    )
    assert body == {"data": {"candles": []}}


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


async def test_garbage_and_extreme_cursors_are_bad_user_input(
    gql: GraphQLClient, stored: Stored
) -> None:
    start = stored.snapshots("all", "1h")[-30].at.isoformat()
    query = """query ($s: DateTime!, $a: String) {
      snapshots(symbol: "BTC/USDT:USDT", start: $s, first: 2, after: $a) {
        edges { cursor node { at } } } }"""
    first = (await timed(gql, query, s=start))["data"]["snapshots"]["edges"]
    assert len(first) == 2
    # a real cursor pages on: the next page starts after it
    after = (await timed(gql, query, s=start, a=first[0]["cursor"]))["data"]["snapshots"]
    assert after["edges"][0]["node"]["at"] == first[1]["node"]["at"]
    garbage = [
        "garbage",
        "%%%",
        "\u0000",
        "x" * 100_000,
        _cursor("ts:"),
        _cursor("ts:abc"),
        _cursor("ts:" + "9" * 30),  # OverflowError in fromtimestamp
        _cursor("ts:-" + "9" * 30),
        _cursor("ts:" + "9" * 5000),  # beyond int()'s digit limit
        _cursor("ts:-62135596800000"),  # 0001-01-01: stepping back a bar leaves datetime
        _cursor("ts:253402300799000"),  # 9999-12-31T23:59:59
        _cursor("ts:1e400"),
        _cursor("ts:nan"),
        _cursor("id:1"),
        base64.urlsafe_b64encode(b"\xff\xfe:1").decode(),
    ]
    for cursor in garbage:
        body = await timed(gql, query, s=start, a=cursor)
        assert codes(body) == {"BAD_USER_INPUT"}, (cursor[:40], body)
        assert len(body["errors"][0]["message"]) < 200
