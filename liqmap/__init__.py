"""liqmap: open liquidation maps and heatmaps for crypto futures."""

__version__ = "0.1.0"
