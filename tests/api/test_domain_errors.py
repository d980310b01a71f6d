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
