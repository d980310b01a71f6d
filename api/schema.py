"""The GraphQL schema: Query and Subscription roots plus the safety extensions."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import fields
from typing import Any

import strawberry
from graphql import GraphQLInputObjectType, GraphQLInterfaceType, GraphQLObjectType
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig

from api.errors import ErrorCodes
from api.execution import FlatListExecutionContext
from api.limits import ApiLimits
from api.metrics import OperationMetrics
from api.resolvers import catalogue, heatmap, known, limits, live, maps, market_data, split
from api.types.scalars import SCALAR_MAP


def _root(func: Callable[..., Any]) -> Any:
    return strawberry.field(resolver=func, description=inspect.cleandoc(func.__doc__ or ""))


def _renamed_root(func: Callable[..., Any], new: str) -> Any:
    return strawberry.field(
        resolver=func,
        description=inspect.cleandoc(func.__doc__ or ""),
        deprecation_reason=f"Renamed {new} (it returns a LiquidationMap); the same arguments "
        "and answer.",
    )


def _subscription(func: Callable[..., Any]) -> Any:
    return strawberry.subscription(resolver=func, description=inspect.cleandoc(func.__doc__ or ""))


@strawberry.type(
    description="Read liquidation maps, heatmaps and the market data behind them. A document has "
    "a depth of at most {limit:max_query_depth}, at most {limit:max_query_tokens} tokens and "
    "{limit:max_aliases} aliases (LIQMAP_API_MAX_QUERY_DEPTH, …_TOKENS, …_ALIASES; "
    "QUERY_TOO_COMPLEX above)."
)
class Query:
    exchanges = _root(catalogue.exchanges)
    markets = _root(catalogue.markets)
    liquidation_map = _root(maps.liquidation_map)
    liquidation_levels = _renamed_root(maps.liquidation_map, "liquidationMap")
    snapshots = _root(maps.snapshots)
    heatmap = _root(heatmap.heatmap)
    long_short_split = _root(split.long_short_split)
    long_short_series = _root(split.long_short_series)
    candles = _root(market_data.candles)
    open_interest = _root(market_data.open_interest)
    funding_rates = _root(market_data.funding_rates)
    realized_liquidations = _root(market_data.realized_liquidations)
    swept_levels = _root(market_data.swept_levels)
    limits = _root(limits.limits)
    known_levels = _root(known.known_levels)
    known_levels_comparison = _root(known.known_levels_comparison)
    known_liquidations = _root(known.known_liquidations)


@strawberry.type(
    description="Live updates over graphql-transport-ws, fed by the materializer. A connection "
    "runs at most {limit:max_subscriptions_per_connection} subscriptions at once "
    "(LIQMAP_API_MAX_SUBSCRIPTIONS_PER_CONNECTION; RATE_LIMITED above)."
)
class Subscription:
    heatmap_updated = _subscription(live.heatmap_updated)
    cluster_alert = _subscription(live.cluster_alert)


class LiqmapSchema(strawberry.Schema):
    """Errors are logged by :class:`api.errors.ErrorCodes` (internal ones only, with context)."""

    def process_errors(self, errors: Any, execution_context: Any = None) -> None:
        return None


LIMIT = re.compile(r"\{limit:([a-z_]+)\}")


def _limit_text(value: float) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:g}"


def describe_limits(schema: strawberry.Schema, limits: ApiLimits) -> None:
    """Fill ``{limit:<name>}`` in every description with the configured value of that limit,
    so the schema states the limits this server enforces (the committed SDL: the defaults)."""
    values = {f.name: _limit_text(getattr(limits, f.name)) for f in fields(limits)}

    def fill(text: str | None) -> str | None:
        if text is None or "{limit:" not in text:
            return text
        return LIMIT.sub(lambda m: values[m.group(1)], text)

    for graphql_type in schema._schema.type_map.values():
        graphql_type.description = fill(graphql_type.description)
        if isinstance(graphql_type, GraphQLObjectType | GraphQLInterfaceType):
            for graphql_field in graphql_type.fields.values():
                graphql_field.description = fill(graphql_field.description)
                for argument in graphql_field.args.values():
                    argument.description = fill(argument.description)
        elif isinstance(graphql_type, GraphQLInputObjectType):
            for input_field in graphql_type.fields.values():
                input_field.description = fill(input_field.description)


def create_schema(limits: ApiLimits) -> strawberry.Schema:
    # The limiters' validation rules are built once, so the validation cache (keyed by the rule
    # classes) hits for repeated queries; a fresh AddValidationRules carries them per request.
    rules = [
        *QueryDepthLimiter(max_depth=limits.max_query_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=limits.max_aliases).validation_rules,
    ]
    schema = LiqmapSchema(
        query=Query,
        subscription=Subscription,
        extensions=[
            # the token limit is a parser option, applied before the (module-level) parse cache
            lambda: MaxTokensLimiter(max_token_count=limits.max_query_tokens),
            lambda: ParserCache(maxsize=512),
            lambda: AddValidationRules(rules),
            lambda: ValidationCache(maxsize=512),
            ErrorCodes,
            OperationMetrics,
        ],
        config=StrawberryConfig(auto_camel_case=True, scalar_map=SCALAR_MAP),
        execution_context_class=FlatListExecutionContext,
    )
    describe_limits(schema, limits)
    return schema


def sdl(limits: ApiLimits | None = None) -> str:
    """The schema in SDL, as committed in schema.graphql."""

    schema = create_schema(limits or ApiLimits.defaults())
    return schema.as_str() + "\n"


if __name__ == "__main__":  # regenerate the committed SDL: python -m api.schema > schema.graphql
    print(sdl(), end="")
