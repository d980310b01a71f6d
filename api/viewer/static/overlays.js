// Overlays: optional layers over the heatmap and the map panel. Each is an entry of
// viewer.json's overlays.list (id, label, GraphQL document, scope) and, here, how to ask for it
// and how to draw it. "range" overlays are read with the heatmap's range and drawn in a strip
// under it; "map" overlays are read with the map shown beside it. More layers (the model's
// leverage bands and max pain per band) slot in as more entries.

import { price as fmtPrice, usd } from "./format.js";
import { DOCUMENTS, STYLE, colour } from "./shared.js";

const LONG = colour("long");
const SHORT = colour("short");
const LONG_LIGHT = colour("long_cumulative");
const SHORT_LIGHT = colour("short_cumulative");
const TEXT = colour("text");
const KNOWN = colour("known");
const PANEL = colour("panel");

const iso = (ms) => new Date(ms).toISOString();
const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "30m" → 1800000 (ms); null for what is not a bar length. */
export function timeframeMs(text) {
  const m = /^(\d+)([mhd])$/.exec(text || "");
  return m ? Number(m[1]) * UNIT_MS[m[2]] : null;
}

/**
 * Realized liquidations per time bucket of max(column, bar) width: for the cross-exchange view a
 * multi-venue total (exchange "*") where a source has one, else the sum over exchanges; one
 * source per exchange and bar (the first by name, as the API's sweptLevels picks), and the bar
 * length most rows have.
 */
export function realizedBars(rows, { aggregate, stepMs }) {
  let chosen = aggregate && rows.some((r) => r.exchange === "*") ? rows.filter((r) => r.exchange === "*") : rows.filter((r) => r.exchange !== "*");
  const counts = new Map();
  for (const r of chosen) counts.set(r.timeframe, (counts.get(r.timeframe) || 0) + 1);
  const timeframe = [...counts].sort((a, b) => b[1] - a[1] || timeframeMs(a[0]) - timeframeMs(b[0]))[0]?.[0];
  const barMs = timeframeMs(timeframe);
  if (!barMs) return { bars: [], max: 0, sources: [] };
  chosen = chosen.filter((r) => r.timeframe === timeframe);
  const firstSource = new Map(); // (exchange, ts) → row of the first source by name
  for (const r of chosen) {
    const key = `${r.exchange}|${r.start}`;
    const seen = firstSource.get(key);
    if (!seen || r.source < seen.source) firstSource.set(key, r);
  }
  const width = Math.max(stepMs, barMs);
  const buckets = new Map();
  const sources = new Set();
  for (const r of firstSource.values()) {
    const t0 = Math.floor(Date.parse(r.start) / width) * width;
    const b = buckets.get(t0) || { t0, t1: t0 + width, long: 0, short: 0, lowerBound: false };
    b.long += r.longUsd;
    b.short += r.shortUsd;
    b.lowerBound ||= r.lowerBound;
    buckets.set(t0, b);
    sources.add(`${r.source}/${r.exchange}`);
  }
  const bars = [...buckets.values()].sort((a, b) => a.t0 - b.t0);
  const max = bars.reduce((m, b) => Math.max(m, b.long, b.short), 0);
  return { bars, max, sources: [...sources].sort(), timeframe };
}

/**
 * Known levels (real positions' liquidation prices on one venue) as bars on the model map's
 * price axis. Each bucket keeps its distance from the venue's own price at the reading: it is
 * placed at price × (map price / known price), so a reading from another time (in a replay,
 * another recorded window) compares in shape; read at the map's instant the factor is ~1.
 */
export function knownBars(data) {
  const known = data.knownLevels ?? null;
  const comparison = data.knownLevelsComparison ?? null;
  const mapPrice = comparison?.model?.price ?? null;
  if (!known) return { bars: [], max: 0, known, comparison, anchor: 1 };
  const anchor = mapPrice && known.price ? mapPrice / known.price : 1;
  const bars = known.levels
    .filter((l) => l.longUsd > 0 || l.shortUsd > 0)
    .map((l) => ({ lo: l.price * anchor, hi: l.priceHigh * anchor, long: l.longUsd, short: l.shortUsd }));
  const max = bars.reduce((m, b) => Math.max(m, b.long, b.short), 0);
  return { bars, max, known, comparison, anchor };
}

/** Bars of the strip: shorts up from the middle line, longs down, filled or outlined, on
 * whole pixels (a bar of a long range is a pixel or two wide: it keeps its colour). */
function stripBars(ctx, g, bars, { long, short, filled }) {
  const s = g.strip;
  const mid = Math.round(s.mid);
  let drawn = 0;
  for (const b of bars) {
    if (b.t1 <= g.start || b.t0 >= g.end) continue;
    const xa = Math.round(Math.max(g.x0, g.xOfTime(b.t0)));
    const xb = Math.round(Math.min(g.x0 + g.w, g.xOfTime(b.t1)));
    const w = Math.max(1, xb - xa - (xb - xa > 3 ? 1 : 0));
    const up = Math.round(s.scale(b.short));
    const down = Math.round(s.scale(b.long));
    if (filled) {
      ctx.fillStyle = SHORT;
      if (up > 0) ctx.fillRect(xa, mid - up, w, up);
      ctx.fillStyle = LONG;
      if (down > 0) ctx.fillRect(xa, mid, w, down);
    } else {
      ctx.lineWidth = 1;
      ctx.strokeStyle = short;
      if (up > 0) ctx.strokeRect(xa + 0.5, mid - up + 0.5, Math.max(1, w - 1), Math.max(0, up - 1));
      ctx.strokeStyle = long;
      if (down > 0) ctx.strokeRect(xa + 0.5, mid + 0.5, Math.max(1, w - 1), Math.max(0, down - 1));
    }
    if (up > 0 || down > 0) drawn++;
  }
  return drawn;
}

/** Labels of one drawing that may not overlap: `free(y)` claims a 14-px band if it is free.
 * A panel gives all its overlays one (`g.free`), so their labels avoid each other too. */
export function bands() {
  const taken = [];
  return (y) => {
    if (taken.some((t) => Math.abs(t - y) < 14)) return false;
    taken.push(y);
    return true;
  };
}

function label(ctx, text, x, y, { align = "left", color = TEXT, background = null } = {}) {
  ctx.font = "11px system-ui, sans-serif";
  ctx.textAlign = align;
  ctx.textBaseline = "middle";
  if (background) {
    const w = ctx.measureText(text).width + 6;
    const left = align === "right" ? x - w + 3 : align === "center" ? x - w / 2 : x - 3;
    ctx.fillStyle = background;
    ctx.fillRect(left, y - 7, w, 14);
  }
  ctx.fillStyle = color;
  ctx.fillText(text, x, y);
}

const common = ({ state }) => ({ symbol: state.symbol, exchanges: state.exchanges.length ? state.exchanges : null });
/** The leverage bands the view draws, as the map queries' argument (null: every band). */
const leverageArg = ({ state }) => ({ leverage: state.leverage.length ? state.leverage : null });

const knownSymbol = (symbol) => `${(symbol || "BTC").split("/")[0]}/USDC:USDC`;
const day = (iso) => (iso ? iso.slice(0, 16).replace("T", " ") : "");

/** How to ask for and draw each overlay of viewer.json (by id). */
const BEHAVIOUR = {
  realized: {
    variables: (c) => ({ ...common(c), start: iso(c.hm.start), end: iso(c.hm.end) }),
    prepare: (data, c) => realizedBars(data.realizedLiquidations, { aggregate: !c.state.exchanges.length, stepMs: c.hm.step }),
    describe: (p) => (p.bars.length ? `${p.sources.join(", ")} · ${p.timeframe} bars` : "none in this range"),
    count: (p) => p.bars.length,
    strip: { max: (p) => p.max, draw: (ctx, g, p) => stripBars(ctx, g, p.bars, { filled: true }) },
  },
  swept: {
    variables: (c) => ({ ...common(c), start: iso(c.hm.start), end: iso(c.hm.end), interval: c.interval }),
    prepare: (data, c) => {
      const bars = data.sweptLevels.map((r) => {
        const t0 = Date.parse(r.start);
        return { t0, t1: t0 + c.hm.step, long: r.predictedLongUsd, short: r.predictedShortUsd };
      });
      return { bars, max: bars.reduce((m, b) => Math.max(m, b.long, b.short), 0) };
    },
    describe: (p) => (p.bars.length ? "what the model says the price swept, per column" : "none in this range"),
    count: (p) => p.bars.filter((b) => b.long > 0 || b.short > 0).length,
    strip: {
      max: (p) => p.max,
      draw: (ctx, g, p) => stripBars(ctx, g, p.bars, { filled: false, long: LONG_LIGHT, short: SHORT_LIGHT }),
    },
  },
  clusters: {
    variables: (c, spec) => ({
      ...common(c), ...leverageArg(c), at: c.at, priceMin: c.hm.priceMin,
      priceMax: c.hm.priceMin + c.hm.rows * c.hm.priceStep, bucketSize: c.hm.priceStep, limit: spec.limit,
    }),
    prepare: (data) => ({ map: data.liquidationMap, walls: data.liquidationMap?.clusters ?? [] }),
    describe: (p) => (p.walls.length ? `${p.walls.length} walls, largest ${usd(p.walls[0].notionalUsd)}` : "none"),
    count: (p) => p.walls.length,
    heatmap(ctx, g, p) {
      if (!p.map) return 0;
      const x = Math.min(g.x0 + g.w - 3, Math.max(g.x0 + 3, g.xOfTime(Date.parse(p.map.at))));
      const free = g.free ?? bands();
      let drawn = 0;
      for (const wall of p.walls) {
        const top = g.yOfPrice(Math.min(g.pHi, wall.priceHigh));
        const bottom = g.yOfPrice(Math.max(g.pLo, wall.priceLow));
        if (bottom <= g.y0 || top >= g.y0 + g.h) continue;
        const c = wall.side === "LONG" ? LONG : SHORT;
        ctx.strokeStyle = c;
        ctx.lineWidth = 2;
        ctx.beginPath(); // a bracket "]" ending at the map's time
        ctx.moveTo(x - 8, top + 1);
        ctx.lineTo(x - 2, top + 1);
        ctx.lineTo(x - 2, Math.max(top + 2, bottom - 1));
        ctx.lineTo(x - 8, Math.max(top + 2, bottom - 1));
        ctx.stroke();
        const y = (top + bottom) / 2;
        if (free(y)) label(ctx, usd(wall.notionalUsd), x - 12, y, { align: "right", color: c, background: "rgba(7,11,20,0.75)" });
        drawn++;
      }
      return drawn;
    },
    map(ctx, g, p) {
      const free = g.free ?? bands();
      let drawn = 0;
      for (const wall of p.walls) {
        const top = g.yOfPrice(Math.min(g.pHi, wall.priceHigh));
        const bottom = g.yOfPrice(Math.max(g.pLo, wall.priceLow));
        if (bottom <= g.y0 || top >= g.y0 + g.h) continue;
        ctx.strokeStyle = wall.side === "LONG" ? LONG : SHORT;
        ctx.lineWidth = 1;
        ctx.setLineDash([3, 2]);
        ctx.strokeRect(g.x0 + 0.5, Math.round(top) + 0.5, g.w - 1, Math.max(2, bottom - top - 1));
        ctx.setLineDash([]);
        const y = (top + bottom) / 2;
        const text = `${wall.side === "LONG" ? "long" : "short"} wall ${usd(wall.notionalUsd)}`;
        if (free(y)) label(ctx, text, g.x0 + g.w - 4, y, { align: "right", background: "rgba(13,19,32,0.8)" });
        drawn++;
      }
      return drawn;
    },
  },
  maxpain: {
    variables: (c) => ({ ...common(c), ...leverageArg(c), at: c.at }),
    prepare: (data) => {
      const m = data.liquidationMap;
      const points = [];
      if (m?.maxPainLong) points.push({ ...m.maxPainLong, side: "LONG" });
      if (m?.maxPainShort) points.push({ ...m.maxPainShort, side: "SHORT" });
      return { map: m, points };
    },
    describe: (p) => (p.points.length ? p.points.map((q) => `${q.side.toLowerCase()} ${fmtPrice(q.price)}`).join(" · ") : "none"),
    count: (p) => p.points.length,
    heatmap(ctx, g, p) {
      if (!p.map) return 0;
      const x = Math.min(g.x0 + g.w - 6, Math.max(g.x0 + 6, g.xOfTime(Date.parse(p.map.at))));
      return p.points.reduce((n, q) => n + painMarker(ctx, g, q, x), 0);
    },
    map(ctx, g, p) {
      let drawn = 0;
      for (const q of p.points) {
        const c = q.side === "LONG" ? LONG : SHORT;
        const inView = q.price >= g.pLo && q.price <= g.pHi;
        const y = inView ? g.yOfPrice(q.price) : q.price < g.pLo ? g.y0 + g.h - 8 : g.y0 + 8;
        if (inView) {
          ctx.strokeStyle = c;
          ctx.lineWidth = 1.5;
          ctx.setLineDash([6, 3]);
          ctx.beginPath();
          ctx.moveTo(g.x0, Math.round(y) + 0.5);
          ctx.lineTo(g.x0 + g.w, Math.round(y) + 0.5);
          ctx.stroke();
          ctx.setLineDash([]);
        }
        const arrow = inView ? "" : q.price < g.pLo ? "↓ " : "↑ ";
        const ly = y - (inView ? 8 : 0);
        g.free?.(ly); // claimed, so that walls' labels keep clear of it
        label(ctx, `${arrow}max pain ${fmtPrice(q.price)}`, g.x0 + 4, ly, { color: c, background: "rgba(13,19,32,0.85)" });
        drawn++;
      }
      return drawn;
    },
  },
  known: {
    variables: (c) => ({ ...common(c), at: c.at, knownSymbol: knownSymbol(c.state.symbol), bucketSize: null }),
    prepare: (data) => knownBars(data),
    describe: (p) => {
      if (!p.known) return "none read by the map's time";
      const c = p.known.coverage;
      const where = Math.abs(p.anchor - 1) > 1e-3 ? `, drawn at their distance from its price ${fmtPrice(p.known.price)}` : "";
      return `${c.accountsPlanned} accounts on ${p.known.exchange} (${usd(p.known.totalLongUsd + p.known.totalShortUsd)}), read ${day(p.known.at)} UTC, outlined on their own USD scale${where}. A sample of accounts on one venue, not the market.`;
    },
    count: (p) => p.bars.length,
    map(ctx, g, p) {
      if (!p.max) return 0;
      const reach = g.w * STYLE.map.bar_reach;
      let drawn = 0;
      ctx.strokeStyle = KNOWN;
      ctx.lineWidth = 1;
      for (const b of p.bars) {
        if (b.hi <= g.pLo || b.lo >= g.pHi) continue;
        const top = Math.round(g.yOfPrice(Math.min(g.pHi, b.hi)));
        const bottom = Math.round(g.yOfPrice(Math.max(g.pLo, b.lo)));
        const height = Math.max(1, bottom - top);
        for (const v of [b.long, b.short]) {
          if (v > 0) ctx.strokeRect(g.x0 + 0.5, top + 0.5, Math.max(1, (v / p.max) * reach - 1), Math.max(0, height - 1));
        }
        drawn++;
      }
      // under the price line, where the walls' and max pain's labels rarely are
      const mapPrice = p.comparison?.model?.price;
      const y = mapPrice > g.pLo && mapPrice < g.pHi ? g.yOfPrice(mapPrice) + 12 : g.y0 + g.h / 2;
      if (drawn && (g.free?.(y) ?? true)) {
        label(ctx, `real positions · ${p.known.at.slice(0, 10)}`, g.x0 + g.w - 4, y, {
          align: "right", color: KNOWN, background: "rgba(13,19,32,0.85)",
        });
      }
      return drawn;
    },
  },
};

function painMarker(ctx, g, q, x) {
  const c = q.side === "LONG" ? LONG : SHORT;
  const inView = q.price >= g.pLo && q.price <= g.pHi;
  const y = inView ? g.yOfPrice(q.price) : q.price < g.pLo ? g.y0 + g.h - 7 : g.y0 + 7;
  ctx.fillStyle = c;
  ctx.strokeStyle = PANEL;
  ctx.lineWidth = 1.5;
  ctx.beginPath(); // a diamond at the price, or an arrow at the edge when it is out of view
  if (inView) {
    ctx.moveTo(x, y - 6);
    ctx.lineTo(x + 6, y);
    ctx.lineTo(x, y + 6);
    ctx.lineTo(x - 6, y);
  } else {
    const d = q.price < g.pLo ? 1 : -1;
    ctx.moveTo(x - 6, y - 4 * d);
    ctx.lineTo(x + 6, y - 4 * d);
    ctx.lineTo(x, y + 4 * d);
  }
  ctx.closePath();
  ctx.fill();
  ctx.stroke();
  g.free?.(y); // claimed, so that walls' labels keep clear of it
  label(ctx, `max pain ${fmtPrice(q.price)}`, x - 10, y, { align: "right", color: c, background: "rgba(7,11,20,0.75)" });
  return 1;
}

/** The overlays: viewer.json's list with each one's document and behaviour. */
export const OVERLAYS = STYLE.overlays.list.map((spec) => {
  const behaviour = BEHAVIOUR[spec.id];
  if (!behaviour) throw new Error(`overlay ${spec.id} has no drawer in overlays.js`);
  return { ...spec, query: DOCUMENTS[spec.document], ...behaviour };
});

export const OVERLAY_IDS = OVERLAYS.map((o) => o.id);
export const DEFAULT_OVERLAYS = OVERLAYS.filter((o) => o.default).map((o) => o.id);

/** The strip's height for a plot of `plotHeight` CSS px (viewer.json). */
export function stripHeight(plotHeight) {
  const { fraction, min_px: lo, max_px: hi } = STYLE.overlays.strip;
  return Math.round(Math.max(lo, Math.min(hi, plotHeight * fraction)));
}
