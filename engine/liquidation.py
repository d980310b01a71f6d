"""Liquidation prices exactly as exchanges compute them (liquidation-math.md §§1-5).

One equation behind every venue: the position is liquidated at the mark price ``P`` where its
equity equals its tiered maintenance margin, ``E(P) = notional(P) · m_k − D_k``. The tier ``k``
is the one the notional *at the liquidation price* falls in (Binance: "calculated at the
liquidation price"): every tier's closed-form root is computed as a (positions × tiers) matrix
and the first tier whose root is consistent with it is taken, via ``argmax`` on the validity
mask. Equity minus MM is monotone in ``P`` (linear) or ``1/P`` (inverse) for one position, so at
most one tier is consistent and the result is the exact root.

Conventions: ``side`` +1 long, −1 short (any integer dtype); quantities are absolute. Every
function broadcasts scalars and arrays and returns a float64 array; NaN marks "no liquidation"
(no consistent tier, or LP ≤ 0, as Binance's UI shows ``--``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Literal

import numpy as np
import numpy.typing as npt

from engine.tiers import FloatArray, MarginTiers

ArrayLike = npt.ArrayLike

# Tier bounds are widened by this relative amount so a root lying exactly on a boundary, where
# two tiers' closed forms agree up to rounding, is not rejected by both.
BOUNDARY_RTOL = 1e-12
# Rows solved per block: bounds the (rows × tiers) temporaries to a few MB.
BLOCK_ROWS = 1 << 16


def _sides(side: ArrayLike) -> FloatArray:
    s = np.asarray(side)
    if s.size and not np.all((s == 1) | (s == -1)):
        raise ValueError("side must be +1 (long) or -1 (short)")
    return s.astype(np.float64)


def _bounds(tiers: MarginTiers) -> tuple[FloatArray, FloatArray]:
    """Tier bounds for the consistency test; the last tier extends to infinity."""
    lower = tiers.floor * (1.0 - BOUNDARY_RTOL)
    upper = tiers.cap * (1.0 + BOUNDARY_RTOL)  # a new array: the table stays read-only
    upper[-1] = np.inf
    return lower, upper


def _cross_equity(
    wallet_balance: ArrayLike, other_maintenance: ArrayLike, other_upnl: ArrayLike
) -> FloatArray:
    """Equity left for this contract: ``WB − TMM1 + UPNL1`` (the other contracts at their mark)."""
    wb = np.asarray(wallet_balance, dtype=np.float64)
    return wb - np.asarray(other_maintenance, dtype=np.float64) + np.asarray(other_upnl, np.float64)


def _first_consistent(lp: FloatArray, notional: FloatArray, tiers: MarginTiers) -> FloatArray:
    """Per row, the root of the first tier whose notional-at-root lies in that tier."""
    lower, upper = _bounds(tiers)
    valid = np.isfinite(lp) & (lp > 0) & (notional >= lower) & (notional <= upper)
    k = np.argmax(valid, axis=1)
    rows = np.arange(lp.shape[0])
    return np.where(valid[rows, k], lp[rows, k], np.nan)


def _solve_blocks(
    args: tuple[FloatArray, ...],
    solve: Callable[..., FloatArray],
    block_rows: int | None = None,
) -> FloatArray:
    """Broadcast the inputs, solve flat row blocks, return in the broadcast shape."""
    rows_per_block = BLOCK_ROWS if block_rows is None else block_rows
    arrays = np.broadcast_arrays(*args)
    shape = arrays[0].shape
    flat = [np.ascontiguousarray(a, dtype=np.float64).reshape(-1) for a in arrays]
    n = flat[0].size
    out = np.empty(n, dtype=np.float64)
    for start in range(0, n, rows_per_block):
        stop = min(start + rows_per_block, n)
        out[start:stop] = solve(*(a[start:stop] for a in flat))
    return out.reshape(shape)


def _linear_roots(
    s: FloatArray, q: FloatArray, p0: FloatArray, e0: FloatArray, tiers: MarginTiers
) -> FloatArray:
    """§1 linear: ``LP_k = (s·Q·P0 − E0 − D_k) / (Q·(s − m_k))``, tier at ``Q·LP``."""
    m = tiers.maintenance_margin_rate[None, :]
    d = tiers.maintenance_amount[None, :]
    s, q = s[:, None], q[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        lp = (s * q * p0[:, None] - e0[:, None] - d) / (q * (s - m))
        notional = q * lp
    return _first_consistent(lp, notional, tiers)


def _inverse_roots(
    s: FloatArray,
    q: FloatArray,
    p0: FloatArray,
    e0: FloatArray,
    cs: FloatArray,
    tiers: MarginTiers,
) -> FloatArray:
    """§1 inverse: ``LP_k = Q·CS·(m_k + s) / (E0 + D_k + s·Q·CS/P0)``, tier at coin notional."""
    m = tiers.maintenance_margin_rate[None, :]
    d = tiers.maintenance_amount[None, :]
    value = (q * cs)[:, None]  # contracts' face value in quote currency
    s = s[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        lp = value * (m + s) / (e0[:, None] + d + s * value / p0[:, None])
        coin_notional = value / lp
    return _first_consistent(lp, coin_notional, tiers)


def linear_liquidation_price(
    side: ArrayLike,
    quantity: ArrayLike,
    entry_price: ArrayLike,
    equity: ArrayLike,
    tiers: MarginTiers,
    *,
    other_maintenance: ArrayLike = 0.0,
    other_upnl: ArrayLike = 0.0,
) -> FloatArray:
    """One-way linear (USDⓈ-M / USDT / USDC) position, cross or isolated.

    ``equity`` is the wallet balance WB: the isolated margin, or the cross wallet balance (then
    pass the maintenance margin and unrealized PnL of the account's *other* contracts, TMM1 and
    UPNL1, evaluated at their mark prices). Solves
    ``WB − TMM1 + UPNL1 + s·Q·(P − EP) = Q·P·m_k − D_k``.
    """
    s = _sides(side)
    e0 = _cross_equity(equity, other_maintenance, other_upnl)
    q = np.asarray(quantity, dtype=np.float64)
    ep = np.asarray(entry_price, dtype=np.float64)
    return _solve_blocks((s, q, ep, e0), partial(_linear_roots, tiers=tiers))


def isolated_liquidation_price(
    side: ArrayLike,
    entry_price: ArrayLike,
    leverage: ArrayLike,
    quantity: ArrayLike,
    tiers: MarginTiers,
    *,
    inverse: bool = False,
    contract_size: ArrayLike = 1.0,
) -> FloatArray:
    """Isolated position opened at ``leverage`` with no margin added: WB = its initial margin.

    Linear: ``WB = EP·Q/L`` (quote). Inverse: ``WB = Q·CS/(EP·L)`` (coin), ``Q`` in contracts.
    A leverage above ``1/m`` puts the long LP above entry (short below): returned as computed,
    since the exchange would refuse such a position but a model may want to see it.
    """
    s = _sides(side)
    ep = np.asarray(entry_price, dtype=np.float64)
    lev = np.asarray(leverage, dtype=np.float64)
    q = np.asarray(quantity, dtype=np.float64)
    if inverse:
        cs = np.asarray(contract_size, dtype=np.float64)
        margin = q * cs / (ep * lev)
        return _solve_blocks((s, q, ep, margin, cs), partial(_inverse_roots, tiers=tiers))
    margin = ep * q / lev
    return _solve_blocks((s, q, ep, margin), partial(_linear_roots, tiers=tiers))


def inverse_liquidation_price(
    side: ArrayLike,
    contracts: ArrayLike,
    entry_price: ArrayLike,
    equity_coin: ArrayLike,
    tiers: MarginTiers,
    *,
    contract_size: ArrayLike,
    other_maintenance: ArrayLike = 0.0,
    other_upnl: ArrayLike = 0.0,
) -> FloatArray:
    """One-way inverse (COIN-M) position; equity, MM and tiers in coin (Binance FAQ [B2]).

    Solves ``WB − TMM1 + UPNL1 + s·Q·CS·(1/EP − 1/P) = (Q·CS/P)·m_k − D_k``.
    """
    s = _sides(side)
    e0 = _cross_equity(equity_coin, other_maintenance, other_upnl)
    q = np.asarray(contracts, dtype=np.float64)
    ep = np.asarray(entry_price, dtype=np.float64)
    cs = np.asarray(contract_size, dtype=np.float64)
    return _solve_blocks((s, q, ep, e0, cs), partial(_inverse_roots, tiers=tiers))


# --- Binance cross margin, hedge mode -------------------------------------------------------


def _hedge_roots(
    lq: FloatArray,
    lep: FloatArray,
    sq: FloatArray,
    sep: FloatArray,
    e0: FloatArray,
    tiers: MarginTiers,
) -> FloatArray:
    """Shared price of a LONG and a SHORT leg, each on its own tier at the root.

    Candidate roots for every (long tier, short tier) pair form an (n × K × K) array. Equity −
    MM is concave in P (the MM slope grows with the tier), so there can be a lower root
    (crossing upward: liquidated by a fall) and an upper one (liquidated by a rise); within
    each kind at most one pair is consistent. Net long → the lower root, else the upper one;
    the other kind when the preferred one does not exist.
    """
    m = tiers.maintenance_margin_rate
    d = tiers.maintenance_amount
    L, S = lq[:, None, None], sq[:, None, None]
    # an empty leg has no maintenance margin, whatever its tier's deduction
    ml, dl = m[None, :, None], d[None, :, None] * (L > 0)
    ms, ds = m[None, None, :], d[None, None, :] * (S > 0)
    num = e0[:, None, None] + dl + ds - L * lep[:, None, None] + S * sep[:, None, None]
    den = L * ml + S * ms - L + S  # = −(dE/dP − dMM/dP)
    with np.errstate(divide="ignore", invalid="ignore"):
        lp = num / den
    return _choose_hedge_root(lp, L * lp, S * lp, den < 0, den > 0, lq > sq, tiers)


def _choose_hedge_root(
    lp: FloatArray,
    long_notional: FloatArray,
    short_notional: FloatArray,
    falls: npt.NDArray[np.bool_],
    rises: npt.NDArray[np.bool_],
    net_long: npt.NDArray[np.bool_],
    tiers: MarginTiers,
) -> FloatArray:
    """From (n × K × K) candidate roots, the consistent one a hedge position is liquidated at.

    A candidate is consistent when both legs' notionals at it lie in the tiers it assumed.
    ``falls``/``rises`` mark roots crossed by a falling/rising price; a net long position takes
    the falling kind, a net short the rising one, each the other kind when it has none.
    """
    lower, upper = _bounds(tiers)
    valid = (
        np.isfinite(lp)
        & (lp > 0)
        & (long_notional >= lower[None, :, None])
        & (long_notional <= upper[None, :, None])
        & (short_notional >= lower[None, None, :])
        & (short_notional <= upper[None, None, :])
    )
    n = lp.shape[0]
    flat_lp = lp.reshape(n, -1)
    rows = np.arange(n)

    def pick(mask: npt.NDArray[np.bool_]) -> FloatArray:
        flat = mask.reshape(n, -1)
        k = np.argmax(flat, axis=1)
        return np.where(flat[rows, k], flat_lp[rows, k], np.nan)

    falling = pick(valid & falls)
    rising = pick(valid & rises)
    preferred = np.where(net_long, falling, rising)
    fallback = np.where(net_long, rising, falling)
    return np.where(np.isnan(preferred), fallback, preferred)


def linear_hedge_liquidation_price(
    long_quantity: ArrayLike,
    long_entry: ArrayLike,
    short_quantity: ArrayLike,
    short_entry: ArrayLike,
    wallet_balance: ArrayLike,
    tiers: MarginTiers,
    *,
    other_maintenance: ArrayLike = 0.0,
    other_upnl: ArrayLike = 0.0,
) -> FloatArray:
    """Binance cross margin in hedge mode: LONG and SHORT of one contract share one LP [B1].

    Solves ``WB − TMM1 + UPNL1 + L·(P − EPL) − S·(P − EPS) = MM_L(L·P) + MM_S(S·P)``. A zero leg
    contributes nothing, so this also covers one-way positions (and is checked against
    ``linear_liquidation_price`` in the tests).
    """
    e0 = _cross_equity(wallet_balance, other_maintenance, other_upnl)
    args = tuple(
        np.asarray(a, dtype=np.float64)
        for a in (long_quantity, long_entry, short_quantity, short_entry, e0)
    )
    # smaller blocks: the candidate array is K² wide
    block_rows = max(1, BLOCK_ROWS // len(tiers))
    return _solve_blocks(args, partial(_hedge_roots, tiers=tiers), block_rows)


def _legs(
    side_both: ArrayLike,
    position_both: ArrayLike,
    entry_both: ArrayLike,
    position_long: ArrayLike,
    entry_long: ArrayLike,
    position_short: ArrayLike,
    entry_short: ArrayLike,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Binance's BOTH / LONG / SHORT terms as a LONG and a SHORT leg: (qty, entry) of each.

    A BOTH (one-way) position is a LONG or a SHORT leg with the other leg empty.
    """
    s = _sides(side_both)
    both = np.asarray(position_both, dtype=np.float64)
    hedge_long = np.asarray(position_long, dtype=np.float64)
    hedge_short = np.asarray(position_short, dtype=np.float64)
    if np.any((both != 0) & ((hedge_long != 0) | (hedge_short != 0))):
        raise ValueError("a contract is either one-way (BOTH) or hedge (LONG/SHORT), not both")
    long_q = np.where(s > 0, both, 0.0) + hedge_long
    short_q = np.where(s < 0, both, 0.0) + hedge_short
    long_ep = np.where(hedge_long != 0, entry_long, entry_both).astype(np.float64)
    short_ep = np.where(hedge_short != 0, entry_short, entry_both).astype(np.float64)
    return long_q, long_ep, short_q, short_ep


def binance_cross_liquidation_price(
    wallet_balance: ArrayLike,
    tiers: MarginTiers,
    *,
    side_both: ArrayLike = 1,
    position_both: ArrayLike = 0.0,
    entry_both: ArrayLike = 0.0,
    position_long: ArrayLike = 0.0,
    entry_long: ArrayLike = 0.0,
    position_short: ArrayLike = 0.0,
    entry_short: ArrayLike = 0.0,
    other_maintenance: ArrayLike = 0.0,
    other_upnl: ArrayLike = 0.0,
) -> FloatArray:
    """Binance USDⓈ-M FAQ formula for "Contract 1" [B1], every mode in one call.

    ``LP1 = (WB − TMM1 + UPNL1 + cumB + cumL + cumS − Side1BOTH·Position1BOTH·EP1BOTH
    − Position1LONG·EP1LONG + Position1SHORT·EP1SHORT) / (Position1BOTH·MMRB + Position1LONG·MMRL
    + Position1SHORT·MMRS − Side1BOTH·Position1BOTH − Position1LONG + Position1SHORT)``,
    with each MMR/cum taken from the tier of that position's notional at LP1. One-way: BOTH
    terms only; hedge: LONG/SHORT only; isolated: TMM1 = UPNL1 = 0 and WB = isolated wallet.
    """
    long_q, long_ep, short_q, short_ep = _legs(
        side_both,
        position_both,
        entry_both,
        position_long,
        entry_long,
        position_short,
        entry_short,
    )
    return linear_hedge_liquidation_price(
        long_q,
        long_ep,
        short_q,
        short_ep,
        wallet_balance,
        tiers,
        other_maintenance=other_maintenance,
        other_upnl=other_upnl,
    )


# --- Binance COIN-M cross margin, hedge mode ------------------------------------------------


def _inverse_hedge_roots(
    lq: FloatArray,
    lep: FloatArray,
    sq: FloatArray,
    sep: FloatArray,
    e0: FloatArray,
    cs: FloatArray,
    tiers: MarginTiers,
) -> FloatArray:
    """Shared price of an inverse LONG and SHORT leg (contracts), tiers on coin notional.

    In ``x = 1/P`` equity and maintenance are both linear per tier pair:
    ``E0 + CS·(L/EPL − S/EPS) − CS·(L − S)·x = CS·x·(L·mL + S·mS) − DL − DS``, so
    ``LP = CS·(L·mL + S·mS + L − S) / (E0 + DL + DS + CS·(L/EPL − S/EPS))`` — the COIN-M FAQ
    formula [B2]. A positive slope ``c = L·mL + S·mS + L − S`` means a fall liquidates.
    """
    m = tiers.maintenance_margin_rate
    d = tiers.maintenance_amount
    L, S = lq[:, None, None], sq[:, None, None]
    size = cs[:, None, None]
    ml, dl = m[None, :, None], d[None, :, None] * (L > 0)
    ms, ds = m[None, None, :], d[None, None, :] * (S > 0)
    slope = L * ml + S * ms + L - S
    base = e0[:, None, None] + dl + ds + size * (L / lep[:, None, None] - S / sep[:, None, None])
    with np.errstate(divide="ignore", invalid="ignore"):
        lp = size * slope / base
        long_coin, short_coin = L * size / lp, S * size / lp
    return _choose_hedge_root(lp, long_coin, short_coin, slope > 0, slope < 0, lq > sq, tiers)


def binance_coinm_cross_liquidation_price(
    wallet_balance_coin: ArrayLike,
    tiers: MarginTiers,
    *,
    contract_size: ArrayLike,
    side_both: ArrayLike = 1,
    position_both: ArrayLike = 0.0,
    entry_both: ArrayLike = 1.0,
    position_long: ArrayLike = 0.0,
    entry_long: ArrayLike = 1.0,
    position_short: ArrayLike = 0.0,
    entry_short: ArrayLike = 1.0,
    other_maintenance: ArrayLike = 0.0,
    other_upnl: ArrayLike = 0.0,
) -> FloatArray:
    """Binance COIN-M FAQ formula [B2] (liquidation-math §2.5), every mode in one call.

    ``LP = (B·MMRB + L·MMRL + S·MMRS + SideBOTH·B + L − S) / ((WB − TMM1 + UPNL1 + cumB + cumL
    + cumS)/CM + SideBOTH·B/EPB + L/EPL − S/EPS)``; positions in contracts of ``contract_size``
    (CM) USD, balances and tiers in coin, each leg's MMR/cum from the tier of its coin notional
    at LP. One-way: BOTH terms; hedge: LONG/SHORT; isolated: TMM1 = UPNL1 = 0.
    """
    long_q, long_ep, short_q, short_ep = _legs(
        side_both,
        position_both,
        entry_both,
        position_long,
        entry_long,
        position_short,
        entry_short,
    )
    e0 = _cross_equity(wallet_balance_coin, other_maintenance, other_upnl)
    args = tuple(
        np.asarray(a, dtype=np.float64)
        for a in (long_q, long_ep, short_q, short_ep, e0, contract_size)
    )
    block_rows = max(1, BLOCK_ROWS // len(tiers))
    return _solve_blocks(args, partial(_inverse_hedge_roots, tiers=tiers), block_rows)


# --- Bybit ----------------------------------------------------------------------------------


def bybit_linear_isolated_liquidation_price(
    side: ArrayLike,
    entry_price: ArrayLike,
    quantity: ArrayLike,
    leverage: ArrayLike,
    tiers: MarginTiers,
    *,
    extra_margin: ArrayLike = 0.0,
) -> FloatArray:
    """Bybit USDT contracts, isolated, as published [Y1]: MM linearised at the entry value.

    ``LP = EP ∓ (IM − MM)/Size ∓ ExtraMargin/Size``, ``IM = Size·EP/L``,
    ``MM = Size·EP·MMR − deduction`` with the risk-limit tier of the entry value.
    """
    s = _sides(side)
    ep = np.asarray(entry_price, dtype=np.float64)
    q = np.asarray(quantity, dtype=np.float64)
    value = q * ep
    k = tiers.tier_index(value)
    im = value / np.asarray(leverage, dtype=np.float64)
    mm = value * tiers.maintenance_margin_rate[k] - tiers.maintenance_amount[k]
    with np.errstate(divide="ignore", invalid="ignore"):
        lp = ep - s * (im - mm + np.asarray(extra_margin, dtype=np.float64)) / q
    return _positive(lp)


def bybit_linear_bankruptcy_price(
    side: ArrayLike, entry_price: ArrayLike, leverage: ArrayLike
) -> FloatArray:
    """Bybit USDT contracts: the price where the initial margin is gone, ``EP·(1 ∓ 1/L)``."""
    s = _sides(side)
    ep = np.asarray(entry_price, dtype=np.float64)
    return _positive(ep * (1.0 - s / np.asarray(leverage, dtype=np.float64)))


def bybit_inverse_isolated_liquidation_price(
    side: ArrayLike,
    quantity: ArrayLike,
    entry_price: ArrayLike,
    leverage: ArrayLike,
    tiers: MarginTiers,
    *,
    extra_margin: ArrayLike = 0.0,
    fee_rate: ArrayLike = 0.0,
    version: Literal["current", "legacy"] = "current",
) -> FloatArray:
    """Bybit inverse contracts, isolated; ``quantity`` in USD (1 USD contracts), margins in coin.

    ``PV = Qty/EP``, ``IM = PV/L`` (``leverage=inf`` for none), tier of PV.

    * ``"current"`` [Y2, 2026]: ``LP_long = Qty·(1 + MMR)/(PV + IM + Extra/(1+fee) + ded)``,
      ``LP_short = Qty·(1 − MMR)/(PV − IM − Extra/(1+fee) − ded)`` (§1 plus a fee term).
    * ``"legacy"`` [Y2 old, Y3]: ``LP_long = Qty/(PV + M − MM)``, ``LP_short = Qty/(PV − (M − MM))``
      with ``MM = PV·MMR − ded`` and position margin ``M = IM + Extra``, less the taker fee to
      close at the bankruptcy price when ``fee_rate`` is given (how [Y3]'s cross example, with
      the whole balance as ``extra_margin``, gets its bankruptcy price).
    """
    s = _sides(side)
    qty = np.asarray(quantity, dtype=np.float64)
    ep = np.asarray(entry_price, dtype=np.float64)
    fee = np.asarray(fee_rate, dtype=np.float64)
    extra = np.asarray(extra_margin, dtype=np.float64)
    pv = qty / ep
    k = tiers.tier_index(pv)
    rate = tiers.maintenance_margin_rate[k]
    deduction = tiers.maintenance_amount[k]
    im = pv / np.asarray(leverage, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if version == "current":
            lp = qty * (1.0 + s * rate) / (pv + s * (im + extra / (1.0 + fee) + deduction))
        elif version == "legacy":
            margin = im + extra
            # fee to close at the bankruptcy price Qty·(1 + s·fee)/(PV + s·M)
            margin = margin - fee * (pv + s * margin) / (1.0 + s * fee)
            mm = pv * rate - deduction
            lp = qty / (pv + s * (margin - mm))
        else:
            raise ValueError(f"unknown Bybit formula version {version!r}")
    return _positive(lp)


def bybit_inverse_bankruptcy_price(
    side: ArrayLike,
    quantity: ArrayLike,
    entry_price: ArrayLike,
    margin: ArrayLike,
    *,
    fee_rate: ArrayLike = 0.0,
) -> FloatArray:
    """Bybit inverse: where margin less the fee to close there is gone [Y3].

    ``BP = Qty·(1 ± fee)/(Qty/EP ± margin)`` (+ long, − short).
    """
    s = _sides(side)
    qty = np.asarray(quantity, dtype=np.float64)
    pv = qty / np.asarray(entry_price, dtype=np.float64)
    fee = np.asarray(fee_rate, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        bp = qty * (1.0 + s * fee) / (pv + s * np.asarray(margin, dtype=np.float64))
    return _positive(bp)


# --- OKX ------------------------------------------------------------------------------------


def okx_linear_isolated_liquidation_price(
    side: ArrayLike,
    entry_price: ArrayLike,
    quantity: ArrayLike,
    margin: ArrayLike,
    maintenance_margin_rate: ArrayLike | MarginTiers,
    *,
    taker_fee_rate: ArrayLike = 0.0,
    contracts: ArrayLike | None = None,
) -> FloatArray:
    """OKX linear swap, isolated — an APPROXIMATION (freqtrade's generic formula [O3]).

    ``LP_long = (EP − margin/Q)/(1 − MMR − fee)``, ``LP_short = (EP + margin/Q)/(1 + MMR + fee)``.
    OKX's trigger is a margin ratio ``(margin + UPL)/(MM + fees) = 100%`` [O2]; with no fee this
    is §1 with no deduction. No official worked example was retrievable. OKX tiers are keyed on
    position size in contracts (``minSz/maxSz``), which does not move with the price: pass the
    tier table (floors in contracts) and ``contracts`` to have the rate looked up, or a rate.
    """
    s = _sides(side)
    ep = np.asarray(entry_price, dtype=np.float64)
    q = np.asarray(quantity, dtype=np.float64)
    if isinstance(maintenance_margin_rate, MarginTiers):
        if contracts is None:
            raise ValueError("OKX tiers are keyed on contracts: pass contracts=")
        tiers = maintenance_margin_rate
        rate = tiers.maintenance_margin_rate[tiers.tier_index(contracts)]
    else:
        rate = np.asarray(maintenance_margin_rate, dtype=np.float64)
    fee = np.asarray(taker_fee_rate, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        lp = (ep - s * np.asarray(margin, dtype=np.float64) / q) / (1.0 - s * (rate + fee))
    return _positive(lp)


# --- Hyperliquid ----------------------------------------------------------------------------


def hyperliquid_liquidation_price(
    side: ArrayLike,
    size: ArrayLike,
    entry_price: ArrayLike,
    margin: ArrayLike,
    max_leverage: ArrayLike,
) -> FloatArray:
    """Hyperliquid [H1]: ``price − side·margin_available/size/(1 − l·side)``, ``l = 1/(2·maxLev)``.

    ``margin`` is the isolated margin (or account value for cross); ``margin_available`` is it
    minus the maintenance margin at ``price`` (here the entry price, as the exchange's returned
    values imply). Equal to §1 with ``m = l``, ``D = 0``.
    """
    s = _sides(side)
    sz = np.asarray(size, dtype=np.float64)
    ep = np.asarray(entry_price, dtype=np.float64)
    rate = 1.0 / (2.0 * np.asarray(max_leverage, dtype=np.float64))
    available = np.asarray(margin, dtype=np.float64) - sz * ep * rate
    with np.errstate(divide="ignore", invalid="ignore"):
        lp = ep - s * available / sz / (1.0 - rate * s)
    return _positive(lp)


def _positive(lp: npt.NDArray[np.float64]) -> FloatArray:
    out = np.asarray(lp, dtype=np.float64)
    return np.where(np.isfinite(out) & (out > 0), out, np.nan)
