"""Known levels: real positions' liquidation prices on one venue, and the model beside them."""

from __future__ import annotations

from datetime import datetime

from api.types.base import described, field
from maps.distance import DistanceProfile
from maps.known import KnownTable
from models.known_positions_store import AccountLiquidation
from models.known_positions_store import KnownCoverage as StoredCoverage

WHAT_IT_IS = (
    "A sample of accounts on one venue, not the market: only the positions of the accounts "
    "read (see selection), each at the liquidation price the venue itself computes. Other "
    "venues, and every account outside the sample, are absent."
)


@described
class KnownLevel:
    """One price bucket of known levels: USD of real positions whose venue-computed
    liquidation price lies in the bucket."""

    price: float = field("Lower edge of the bucket (USD).")
    price_high: float = field("Upper edge of the bucket (USD).")
    long_usd: float = field("Long positions that would be liquidated in this bucket (USD).")
    short_usd: float = field("Short positions that would be liquidated in this bucket (USD).")
    long_usd_by_leverage: list[float] = field(
        "longUsd split by leverage band (the bands of leverageBands, in that order)."
    )
    short_usd_by_leverage: list[float] = field("shortUsd split by leverage band.")
    positions: int | None = field(
        "Positions in the bucket (null for a recorded source, which does not say)."
    )


@described
class KnownLevelsCoverage:
    """Whose positions these are and how much of the venue they hold."""

    exchange: str = field("The venue (ccxt id).")
    source: str = field(
        "Where the levels come from: clearinghouseState (liqmap read the accounts) or the "
        "recorded source's name."
    )
    selection: str = field("How the accounts were chosen.")
    accounts_planned: int = field("Accounts the reading covers (or set out to read).")
    accounts_read: int | None = field("Accounts read, with or without success (null: not listed).")
    accounts_failed: int | None = field("Accounts that could not be read.")
    accounts: list[str] | None = field(
        "The accounts (address, @dex for a HIP-3 dex), when the source lists them."
    )
    positions: int = field("Positions of the sample in this market.")
    long_usd: float = field("USD of the sample's long positions in this market.")
    short_usd: float = field("USD of the sample's short positions in this market.")
    venue_open_interest_usd: float | None = field(
        "The venue's open interest in this market when the reading ended (USD; null: unknown)."
    )
    open_interest_share: float | None = field(
        "The sample's share of the venue's open interest: (longUsd + shortUsd) / (2 × "
        "venueOpenInterestUsd), open interest counting one side (null: unknown)."
    )
    state_from: datetime | None = field("The venue's time of the oldest account state read.")
    state_to: datetime | None = field("The venue's time of the newest account state read.")
    note: str = field("What this layer is and is not.")

    @classmethod
    def of(cls, row: StoredCoverage) -> KnownLevelsCoverage:
        return cls(
            exchange=row.venue,
            source=row.source,
            selection=row.selection,
            accounts_planned=row.accounts_planned,
            accounts_read=row.accounts_read,
            accounts_failed=row.accounts_failed,
            accounts=row.accounts,
            positions=row.positions,
            long_usd=row.long_usd,
            short_usd=row.short_usd,
            venue_open_interest_usd=row.venue_open_interest_usd,
            open_interest_share=row.open_interest_share,
            state_from=row.state_from,
            state_to=row.state_to,
            note=WHAT_IT_IS,
        )


@described
class DistanceBand:
    """The share of each side's USD whose liquidation price lies within ±withinPct of the
    price (longs below it, shorts above)."""

    within_pct: float = field("The band, percent of the price.")
    long_share: float = field("Share (0–1) of the long USD within the band below the price.")
    short_share: float = field("Share (0–1) of the short USD within the band above the price.")


def bands_of(profile: DistanceProfile) -> list[DistanceBand]:
    return [
        DistanceBand(within_pct=round(b * 100, 10), long_share=lo, short_share=sh)
        for b, lo, sh in zip(profile.bands, profile.long_share, profile.short_share, strict=True)
    ]


@described
class DistanceProfileSide:
    """One side of a comparison: whose levels, when, and how far from the price they sit."""

    kind: str = field("model (liqmap's estimate) or known (real positions of a sample).")
    exchanges: list[str] = field("The venues the levels are of.")
    symbol: str = field("Unified symbol of the market.")
    at: datetime = field("The instant the levels describe.")
    price: float = field("The price the distances are measured from.")
    long_usd: float = field("Long USD of the levels (the long shares' denominator).")
    short_usd: float = field("Short USD of the levels.")
    bands: list[DistanceBand] = field("The profile: ±1, 2, 5, 10 and 20 %.")

    @classmethod
    def of(
        cls,
        kind: str,
        exchanges: list[str],
        symbol: str,
        at: datetime,
        price: float,
        profile: DistanceProfile,
    ) -> DistanceProfileSide:
        return cls(
            kind=kind,
            exchanges=exchanges,
            symbol=symbol,
            at=at,
            price=price,
            long_usd=profile.long_usd,
            short_usd=profile.short_usd,
            bands=bands_of(profile),
        )


@described
class KnownLevelsComparison:
    """The model's distance-from-price profile beside the real one of known positions, each
    labelled with its venues and time: how far the estimate is from known positions."""

    model: DistanceProfileSide = field("The model's map.")
    known: DistanceProfileSide = field("The known levels.")
    same_venues: bool = field("Whether both sides are of the same venues.")
    seconds_apart: float = field("known.at minus model.at, in seconds (negative: known earlier).")
    note: str = field("What is compared with what, in words (venues, times, what it is not).")


@described
class KnownLevels:
    """Real positions' liquidation levels on one venue, binned like a map, with whose they
    are. A sample of accounts on one venue, not the market."""

    exchange: str = field("The venue (ccxt id).")
    symbol: str = field("Unified symbol, e.g. BTC/USDC:USDC.")
    at: datetime = field(
        "When the reading was taken (a live round: when it started; a recorded snapshot: its "
        "own stamp)."
    )
    price: float | None = field("The market price the levels lie around.")
    bucket_size: float = field("Width of each level (USD).")
    source_bins: bool = field(
        "True when the levels are the recorded source's own bins (kept as made, of width "
        "bucketSize); false when liqmap binned single positions at bucketSize."
    )
    leverage_bands: list[str] = field("Labels of the leverage bands (e.g. 1-10, 51+).")
    total_long_usd: float = field("Sum of longUsd over the levels.")
    total_short_usd: float = field("Sum of shortUsd over the levels.")
    levels: list[KnownLevel] = field("Non-empty buckets, ascending by price.")
    coverage: KnownLevelsCoverage = field("Which accounts, how many, what share of the venue.")
    distance: list[DistanceBand] = field(
        "The distance-from-price profile of these levels (±1, 2, 5, 10, 20 %)."
    )

    @classmethod
    def of(
        cls,
        row: StoredCoverage,
        table: KnownTable,
        bucket_size: float,
        bands: tuple[str, ...],
        profile: DistanceProfile,
    ) -> KnownLevels:
        positions = table.positions.tolist() if table.positions is not None else None
        levels = [
            KnownLevel(
                price=p,
                price_high=ph,
                long_usd=lo,
                short_usd=sh,
                long_usd_by_leverage=lb,
                short_usd_by_leverage=sb,
                positions=positions[i] if positions is not None else None,
            )
            for i, (p, ph, lo, sh, lb, sb) in enumerate(
                zip(
                    table.price.tolist(),
                    table.price_high.tolist(),
                    table.long_usd.tolist(),
                    table.short_usd.tolist(),
                    table.long_by_band.tolist(),
                    table.short_by_band.tolist(),
                    strict=True,
                )
            )
        ]
        return cls(
            exchange=row.venue,
            symbol=row.symbol,
            at=row.taken_at,
            price=row.price,
            bucket_size=bucket_size,
            source_bins=table.positions is None,
            leverage_bands=list(bands),
            total_long_usd=table.total_long_usd,
            total_short_usd=table.total_short_usd,
            levels=levels,
            coverage=KnownLevelsCoverage.of(row),
            distance=bands_of(profile),
        )


@described
class KnownLiquidation:
    """A liquidation fill of one of the read accounts (the venue names it the liquidated
    account): what really happened to a position of the sample. Not the market's realized
    liquidations (see realizedLiquidations)."""

    ts: datetime = field("When the fill happened.")
    account: str = field("The liquidated account.")
    side: str = field("The liquidated position's side: long or short.")
    price: float = field("Fill price (USD).")
    quantity: float = field("Base units.")
    usd_value: float = field("price × quantity (USD).")

    @classmethod
    def of(cls, row: AccountLiquidation) -> KnownLiquidation:
        return cls(
            ts=row.ts,
            account=row.account,
            side=row.side,
            price=row.price,
            quantity=row.quantity,
            usd_value=row.usd_value,
        )
