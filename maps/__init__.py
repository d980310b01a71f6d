"""The maps domain: the price grid and the arithmetic on a liquidation map (levels, cumulative
curves, max pain, walls, clusters, long/short split), shared by the API, the PNG render and the
export. Pure numpy: arrays in, arrays out; no database, no web framework."""
