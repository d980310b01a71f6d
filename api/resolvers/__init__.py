"""Query and subscription resolvers, one module per concept."""
