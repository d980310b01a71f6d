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
