"""What the maps domain refuses reaches clients as the API's own codes, messages unchanged."""

from __future__ import annotations

from graphql.error import GraphQLError

from api.errors import present
from maps.errors import MapRequestError, TooManyCells, TooManyColumns, TooManyLevels


def _presented(exc: Exception) -> GraphQLError:
    return present(GraphQLError(str(exc), path=["field"], original_error=exc))


def test_bad_input_is_bad_user_input() -> None:
    error = _presented(MapRequestError("priceMax must be greater than priceMin"))
    assert error.message == "priceMax must be greater than priceMin"
    assert error.extensions == {"code": "BAD_USER_INPUT"}


def test_limits_are_range_too_large_naming_the_limit() -> None:
    for exc, extension in (
        (TooManyLevels("5 price levels exceed the maximum of 4; …", 4), {"max_levels": 4}),
        (TooManyColumns("9 columns exceed the maximum of 8; …", 8), {"max_columns": 8}),
        (TooManyCells("… cells exceed the maximum of 100; …", 100), {"max_cells": 100}),
    ):
        error = _presented(exc)
        assert error.message == str(exc)
        assert error.extensions == {**extension, "code": "RANGE_TOO_LARGE"}


def test_other_errors_stay_internal() -> None:
    error = _presented(ValueError("priceMax must be greater than priceMin"))
    assert error.extensions == {"code": "INTERNAL"}
    assert "priceMax" not in error.message


def _database_error(driver_error: Exception) -> Exception:
    """``driver_error`` as SQLAlchemy raises it from a statement: wrapped, the driver's error as
    ``orig`` and as the cause."""
    import sqlalchemy.exc

    wrapped = sqlalchemy.exc.DBAPIError("SELECT … WHERE symbol = $1", {}, driver_error)
    wrapped.__cause__ = driver_error
    return wrapped


def test_database_data_errors_are_bad_user_input_with_a_safe_message() -> None:
    """PostgreSQL's class 22 (a NUL in text, a number or date out of range): the client's value,
    not a fault of the server — BAD_USER_INPUT, one fixed message naming no SQL or driver."""
    import asyncpg.exceptions

    from api.errors import BAD_USER_INPUT, DATA_EXCEPTION_MESSAGE, error_code

    for driver_error in (
        asyncpg.exceptions.CharacterNotInRepertoireError("invalid byte sequence: 0x00"),
        asyncpg.exceptions.NumericValueOutOfRangeError("value out of range"),
        asyncpg.exceptions.DatetimeFieldOverflowError("date/time field value out of range"),
        asyncpg.exceptions.InvalidDatetimeFormatError("invalid input syntax for type timestamp"),
    ):
        assert driver_error.sqlstate.startswith("22")
        for original in (driver_error, _database_error(driver_error)):
            error = GraphQLError("boom", path=["markets"], original_error=original)
            assert error_code(error) == BAD_USER_INPUT
            presented = present(error)
            assert presented.extensions == {"code": BAD_USER_INPUT}
            assert presented.message == DATA_EXCEPTION_MESSAGE
            assert "0x00" not in presented.message and "SELECT" not in presented.message


def test_other_database_errors_stay_internal_and_lost_connections_are_unavailable() -> None:
    import asyncpg.exceptions

    from api.errors import INTERNAL, SERVICE_UNAVAILABLE, error_code

    for driver_error in (
        asyncpg.exceptions.UndefinedTableError("relation does not exist"),  # 42P01: ours
        asyncpg.exceptions.UniqueViolationError("duplicate key"),  # 23505: ours
        asyncpg.exceptions.DivisionByZeroError("division by zero"),  # 22012: class 22 too
    ):
        error = GraphQLError("boom", path=["markets"], original_error=_database_error(driver_error))
        expected = "BAD_USER_INPUT" if driver_error.sqlstate.startswith("22") else INTERNAL
        assert error_code(error) == expected, driver_error.sqlstate
    for lost in (
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        ConnectionRefusedError(111, "Connection refused"),
    ):
        error = GraphQLError("boom", path=["markets"], original_error=_database_error(lost))
        assert error_code(error) == SERVICE_UNAVAILABLE, lost


def _located(message: str, original: Exception | None) -> GraphQLError:
    """An error of the field ``markets`` in a parsed document (nodes, source and positions)."""
    from graphql import parse

    document = parse("{ markets { id } }")
    field = document.definitions[0].selection_set.selections[0]  # type: ignore[attr-defined]
    return GraphQLError(message, nodes=[field], path=["markets"], original_error=original)


def test_presented_errors_keep_their_place_in_the_document() -> None:
    import asyncpg.exceptions
    import sqlalchemy.exc

    from api.errors import UNAVAILABLE_MESSAGE, BadUserInput

    lost = sqlalchemy.exc.OperationalError("SELECT 1", {}, ConnectionRefusedError(111, "refused"))
    for original, code in (
        (BadUserInput("bad", hint=1), "BAD_USER_INPUT"),
        (asyncpg.exceptions.NumericValueOutOfRangeError("out of range"), "BAD_USER_INPUT"),
        (lost, "SERVICE_UNAVAILABLE"),
        (RuntimeError("bug"), "INTERNAL"),
    ):
        error = _located("boom", original)
        presented = present(error)
        assert presented.extensions["code"] == code  # type: ignore[index]
        assert presented.path == ["markets"]
        assert presented.locations == error.locations and error.locations
        assert presented.nodes == error.nodes and presented.source is error.source
        assert presented.positions == error.positions
    assert present(_located("boom", lost)).extensions == {"code": "SERVICE_UNAVAILABLE"}
    assert present(_located("boom", lost)).message == UNAVAILABLE_MESSAGE
    # an ApiError's own extensions join those the error already had
    merged = GraphQLError(
        "bad", path=["x"], original_error=BadUserInput("bad", hint=1), extensions={"a": 2}
    )
    assert present(merged).extensions == {"a": 2, "hint": 1, "code": "BAD_USER_INPUT"}


def test_codes_of_errors_without_a_field() -> None:
    from graphql import GraphQLSyntaxError, Source

    from api.errors import error_code

    coercion = GraphQLError("Variable '$d' got invalid value", original_error=ValueError("no zone"))
    assert error_code(coercion) == "BAD_USER_INPUT"  # a scalar refused the value
    depth = GraphQLError("'Q' exceeds maximum operation depth of 10.")
    assert error_code(depth, validation=True) == "QUERY_TOO_COMPLEX"
    unknown = GraphQLError("Cannot query field 'nope' on type 'Query'.")
    assert error_code(unknown, validation=True) == "GRAPHQL_VALIDATION_FAILED"
    assert error_code(unknown) == "BAD_USER_INPUT"  # not from validation: a variable's value
    assert present(unknown, validation=True).extensions == {"code": "GRAPHQL_VALIDATION_FAILED"}
    syntax = GraphQLSyntaxError(Source("{"), 1, "Expected Name, found <EOF>.")
    assert error_code(syntax) == "GRAPHQL_PARSE_FAILED"


def test_data_exceptions_are_found_however_they_are_wrapped() -> None:
    import asyncpg.exceptions
    import sqlalchemy.exc

    from api.errors import error_code

    nul = asyncpg.exceptions.CharacterNotInRepertoireError("invalid byte sequence: 0x00")
    only_orig = sqlalchemy.exc.DBAPIError("SELECT", {}, nul)  # no __cause__
    assert only_orig.__cause__ is None
    only_cause = RuntimeError("wrapped")
    only_cause.__cause__ = nul
    deeper = RuntimeError("outer")
    deeper.__cause__ = only_orig
    for original in (only_orig, only_cause, deeper):
        assert error_code(GraphQLError("x", path=["f"], original_error=original)) == (
            "BAD_USER_INPUT"
        )
    # a cycle of causes without a data exception ends (INTERNAL), it does not loop forever
    first, second = RuntimeError("a"), RuntimeError("b")
    first.__cause__, second.__cause__ = second, first
    assert error_code(GraphQLError("x", path=["f"], original_error=first)) == "INTERNAL"


def test_domain_refusals_keep_their_messages() -> None:
    from api.errors import BadUserInput, RangeTooLarge, error_body, from_domain

    refused = from_domain(MapRequestError("priceMax must be greater than priceMin"))
    assert isinstance(refused, BadUserInput) and refused.message == str(refused)
    assert refused.message == "priceMax must be greater than priceMin"
    large = from_domain(TooManyLevels("6 price levels exceed the maximum of 5", 5))
    assert isinstance(large, RangeTooLarge) and large.message.startswith("6 price levels")
    assert large.extensions == {"max_levels": 5}
    other = ValueError("x")
    assert from_domain(other) is other and from_domain(None) is None
    assert error_body("RATE_LIMITED", "slow down") == {
        "data": None,
        "errors": [{"message": "slow down", "extensions": {"code": "RATE_LIMITED"}}],
    }


def test_not_found_suggests_close_names_or_lists_a_few() -> None:
    from api.errors import not_found

    venues = ["binanceusdm", "bybit", "okx"]
    found = not_found("exchange", "binance", venues)
    assert found.message == "unknown exchange 'binance'; did you mean 'binanceusdm'?"
    assert found.extensions == {"suggestions": ["binanceusdm"]} and found.code == "NOT_FOUND"
    # at most three, the closest first; a ratio of 0.55 is close enough (cutoff 0.5)
    many = [f"BTC/USDT:USDT{i}" for i in range(5)]
    assert len(not_found("symbol", "BTC/USDT:USDT", many).extensions["suggestions"]) == 3
    # "xbcd" and "abcdzzz" share "bcd": a ratio of 6/11 = 0.55, and no common prefix
    close = not_found("symbol", "xbcd", ["abcdzzz", "zzzz"])
    assert close.extensions["suggestions"] == ["abcdzzz"]
    # no close match: names starting with the same three letters, whatever their case
    symbols = ["BTC/USD:BTC", "BTC/USDC:USDC", "BTC/USDT:USDT", "BTC/X", "ETH/USDT:USDT"]
    prefix = not_found("symbol", "btcusd", symbols)
    assert prefix.extensions["suggestions"] == ["BTC/USD:BTC", "BTC/USDC:USDC", "BTC/USDT:USDT"]
    assert prefix.message == (
        "unknown symbol 'btcusd'; did you mean 'BTC/USD:BTC', 'BTC/USDC:USDC', 'BTC/USDT:USDT'?"
    )
    # nothing close: up to ten known names are listed, more are not; none known, nothing
    ten = [f"v{i:02d}" for i in range(10)]
    assert not_found("exchange", "zzz", ten).message == "unknown exchange 'zzz'; known: " + (
        ", ".join(ten)
    )
    assert not_found("exchange", "zzz", [*ten, "v10"]).message == "unknown exchange 'zzz'"
    assert not_found("exchange", "zzz", []).message == "unknown exchange 'zzz'"
    assert not_found("exchange", "zzz", ["b", "a", "a"]).message.endswith("; known: a, b")


async def test_the_schema_codes_errors_reported_before_any_resolver() -> None:
    """Through the real schema (no database is reached): validation, depth and variable errors
    each get their code from :class:`api.errors.ErrorCodes`."""
    from api.limits import ApiLimits
    from api.schema import create_schema

    schema = create_schema(ApiLimits.defaults())

    async def codes(query: str, **variables: object) -> list[str]:
        result = await schema.execute(query, variable_values=variables or None)
        assert result.errors, query
        return [e.extensions["code"] for e in result.errors]  # type: ignore[index]

    # (a syntax error is coded by the HTTP view, api/http.py: parsing happens before the hooks)
    assert await codes("{ nope }") == ["GRAPHQL_VALIDATION_FAILED"]
    assert await codes("{ nope other }") == ["GRAPHQL_VALIDATION_FAILED"] * 2
    deep = "{ " + "exchanges { " * 12 + "id" + " }" * 12 + " }"
    assert set(await codes(deep)) <= {"QUERY_TOO_COMPLEX", "GRAPHQL_VALIDATION_FAILED"}
    assert "QUERY_TOO_COMPLEX" in await codes(deep)
    heatmap = 'query ($s: DateTime!) { heatmap(symbol: "BTC/USDT:USDT", start: $s) { rows } }'
    assert await codes(heatmap, s="2026-06-01T00:00:00") == ["BAD_USER_INPUT"]  # no zone
    assert await codes(heatmap, s="0001-01-01T00:00:00Z") == ["BAD_USER_INPUT"]
    assert await codes(heatmap, s=5) == ["BAD_USER_INPUT"]
