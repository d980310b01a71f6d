"""Helpers that turn docstrings into schema descriptions."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform

import strawberry

T = TypeVar("T")


@dataclass_transform(kw_only_default=True, field_specifiers=(strawberry.field,))
def described(cls: type[T]) -> type[T]:
    """``@strawberry.type`` whose description is the class docstring."""
    return strawberry.type(cls, description=inspect.cleandoc(cls.__doc__ or ""))


def field(description: str, **kwargs: Any) -> Any:
    """A plain data field with a description."""
    return strawberry.field(description=description, **kwargs)


def renamed(new: str) -> str:
    """The deprecation reason of a field renamed ``new`` for consistent names."""
    return (
        f"Renamed {new} (the same value), so that names agree across types: an instant is "
        "named at, an interval (a bar) by its start."
    )


def resolver(func: Callable[..., Any]) -> Any:
    """A resolver field described by the function's docstring."""
    return strawberry.field(func, description=inspect.cleandoc(func.__doc__ or ""))
