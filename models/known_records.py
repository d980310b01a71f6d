"""Known positions: the row shapes of the real-position layer (plain records, no storage).

On Hyperliquid every account's positions, with the exchange-computed liquidation price, are
public. An adapter reads them as :class:`AccountPositions`; a binned third-party snapshot of
many accounts arrives as :class:`LevelSnapshot`. Times are epoch milliseconds (UTC), sizes in
base units, USD in the quote currency (USDC on Hyperliquid).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class KnownPosition:
    account: str  # the venue's account id (an address on Hyperliquid), lower case
    symbol: str  # unified ccxt symbol, e.g. "BTC/USDC:USDC"
    coin: str  # the venue's own name of the market, e.g. "BTC", "flx:CRCL"
    side: str  # "long" or "short"
    size: float  # base units, positive
    notional_usd: float  # the venue's position value (size × mark)
    entry_price: float | None
    leverage: float | None
    margin_mode: str | None  # "cross" or "isolated"
    liquidation_price: float | None  # the venue's own; None when it reports none (e.g. cross)


@dataclass(frozen=True, slots=True)
class AccountPositions:
    account: str
    dex: str  # "" for the main perpetuals dex, else a HIP-3 dex name
    taken_at: int  # the venue's own time of the state it answered
    positions: list[KnownPosition]


@dataclass(frozen=True, slots=True)
class LevelBin:
    side: str  # "long" or "short": the side that would be liquidated at this price
    price: float  # the bin's centre as the source gives it
    usd: float
    usd_by_leverage: tuple[float, ...]  # per band of LevelSnapshot.leverage_bands


@dataclass(frozen=True, slots=True)
class LevelMarket:
    symbol: str
    price: float  # the market price the bins were laid around
    bin_width: float
    long_usd: float  # totals the source reports (inside its binned range)
    short_usd: float
    positions: int
    bins: list[LevelBin] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class LevelSnapshot:
    """A snapshot that arrived already binned (the recorded top-trader file)."""

    venue: str
    source: str
    taken_at: int
    accounts: int  # how many accounts were read (the source does not list them)
    selection: str  # how the accounts were chosen
    leverage_bands: tuple[str, ...]  # labels of the leverage bands, e.g. "1-10", "51+"
    markets: list[LevelMarket]
    meta: dict[str, object] = field(default_factory=dict)
