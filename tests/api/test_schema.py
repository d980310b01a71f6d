"""The committed SDL is the public contract: it must match the code, and be documented."""

from __future__ import annotations

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
