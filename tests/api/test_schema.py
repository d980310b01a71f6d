"""The committed SDL is the public contract: it must match the code, and be documented."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from graphql import GraphQLEnumType, GraphQLObjectType, GraphQLScalarType

from api.limits import ApiLimits
from api.schema import create_schema, sdl

REPO = Path(__file__).resolve().parents[2]


def test_schema_graphql_matches_the_code() -> None:
    committed = (REPO / "schema.graphql").read_text()
    assert committed == sdl(), (
        "schema.graphql is out of date; regenerate it with: python -m api.schema > schema.graphql"
    )


def test_every_type_field_and_argument_is_described() -> None:
    schema = create_schema(ApiLimits.defaults())._schema
    missing = []
    for name, gtype in schema.type_map.items():
        if name.startswith("__") or name in {"String", "Int", "Float", "Boolean", "ID"}:
            continue
        if not gtype.description:
            missing.append(name)
        if isinstance(gtype, GraphQLObjectType):
            for field_name, field in gtype.fields.items():
                if not field.description:
                    missing.append(f"{name}.{field_name}")
                for arg_name, arg in field.args.items():
                    if not arg.description:
                        missing.append(f"{name}.{field_name}({arg_name})")
        if isinstance(gtype, GraphQLEnumType):
            missing += [f"{name}.{v}" for v, d in gtype.values.items() if not d.description]
        assert not isinstance(gtype, GraphQLScalarType) or gtype.description or name == "DateTime"
    assert not missing, missing


def test_descriptions_state_the_configured_limits() -> None:
    """Every limit an argument is bounded by is in its description, with the value this server
    enforces (here deliberately not the defaults), and the setting that changes it."""
    limits = replace(
        ApiLimits.defaults(),
        max_page_size=37,
        max_heatmap_columns=1234,
        max_series_points=4321,
        max_span_days=12.5,
        max_levels=777,
        max_matrix_cells=98_765,
    )
    schema = create_schema(limits)._schema
    query = schema.query_type
    assert query is not None

    def arg(field: str, name: str) -> str:
        return query.fields[field].args[name].description or ""

    assert "0 to 37 snapshots" in arg("snapshots", "first")
    assert "LIQMAP_API_MAX_PAGE_SIZE" in arg("snapshots", "first")
    for field in ("heatmap", "snapshots", "candles", "openInterest", "fundingRates", "sweptLevels"):
        assert "At most 12.5 days after start (LIQMAP_API_MAX_SPAN_DAYS" in arg(field, "end")
    assert "2,000" not in arg("heatmap", "end") and "1,234 columns" in arg("heatmap", "end")
    assert "1,234 columns" in arg("heatmap", "interval")
    for name in ("priceMin", "priceMax", "bucketSize"):
        assert "98,765 cells" in arg("heatmap", name)
        assert "777 price levels" in arg("liquidationMap", name)
    for field in ("candles", "openInterest", "sweptLevels"):
        assert "4,321 bars of the interval" in arg(field, "end")
    for field in ("fundingRates", "realizedLiquidations"):
        assert "at most 4,321 rows (LIQMAP_API_MAX_SERIES_POINTS); RANGE_TOO_LARGE" in arg(
            field, "end"
        )
    printed = create_schema(limits).as_str()
    assert "{limit:" not in printed
    assert "depth of at most 10" in (query.description or "")


def test_old_names_are_deprecated_with_a_reason_and_the_viewer_uses_none() -> None:
    from graphql import parse, validate
    from graphql.validation import NoDeprecatedCustomRule

    from api.viewer.shared import documents

    schema = create_schema(ApiLimits.defaults())._schema
    deprecated = {
        (type_name, field_name): field.deprecation_reason
        for type_name, gtype in schema.type_map.items()
        if isinstance(gtype, GraphQLObjectType) and not type_name.startswith("__")
        for field_name, field in gtype.fields.items()
        if field.deprecation_reason
    }
    assert set(deprecated) == {
        ("Query", "liquidationLevels"),
        ("Candle", "ts"),
        ("OpenInterestPoint", "ts"),
        ("FundingRatePoint", "ts"),
        ("RealizedLiquidationBar", "ts"),
        ("SweptBar", "ts"),
        ("DatasetCoverage", "firstTs"),
        ("DatasetCoverage", "lastTs"),
    }
    assert all("Renamed" in reason for reason in deprecated.values())
    query = schema.query_type
    assert query is not None
    exchange = query.fields["snapshots"].args["exchange"]
    assert exchange.deprecation_reason and "exchanges" in exchange.deprecation_reason
    # no root field takes a single exchange where several could be summed
    for name, field in query.fields.items():
        if "exchange" in field.args and not field.args["exchange"].deprecation_reason:
            # markets and series are one venue's by nature; known levels are a sample of
            # accounts on one venue, never summed with another venue's
            assert name in {
                "markets",
                "candles",
                "openInterest",
                "fundingRates",
                "knownLevels",
                "knownLiquidations",
            }, name
    for name, text in documents().items():
        errors = validate(schema, parse(text), [NoDeprecatedCustomRule])
        assert not errors, (name, errors)
