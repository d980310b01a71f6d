"""GraphQL object types (data shapes only; the resolvers live in :mod:`api.resolvers`)."""
