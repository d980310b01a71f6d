// The view's state and its URL form, so that a view can be shared by its address.

import { DURATIONS } from "./format.js";
import { DEFAULT_OVERLAYS, OVERLAY_IDS } from "./overlays.js";
import { STYLE } from "./shared.js";

/** The resolutions an address may name (what the API accepts is checked when loading). */
const RESOLUTIONS = new Set(["auto", ...STYLE.intervals.map((i) => i.id)]);
export const RANGES = [...Object.keys(DURATIONS), "custom"];
export const SIDES = Object.keys(STYLE.sides);
export const SCALE_NAMES = Object.keys(STYLE.scales);
export const PRICE_AXES = Object.keys(STYLE.price_axes).filter((k) => !k.startsWith("$"));
/** The leverage bands, lowest first (ids as the API's LeverageBand enum). */
export const LEVERAGE_IDS = STYLE.leverage_bands.map((b) => b.id);

export const DEFAULTS = {
  symbol: "",
  exchanges: [],
  range: "24h",
  start: null,
  end: null,
  res: "auto",
  side: STYLE.defaults.side,
  scale: STYLE.defaults.scale,
  within: STYLE.defaults.within_pct,
  axis: STYLE.defaults.price_axis,
  pmin: null,
  pmax: null,
  bucket: null,
  overlays: DEFAULT_OVERLAYS,
  leverage: [], // the bands drawn; empty: every band (the whole map)
};

function num(text) {
  if (text === null || text === "") return null;
  const v = Number(text);
  return Number.isFinite(v) ? v : null;
}

function time(text) {
  if (!text) return null;
  const v = /^\d+$/.test(text) ? Number(text) : Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text}Z`);
  return Number.isFinite(v) ? v : null;
}

/** State from location.search (unknown or malformed values fall back to the defaults). */
export function fromUrl(search) {
  const p = new URLSearchParams(search);
  const s = { ...DEFAULTS, exchanges: [], overlays: [...DEFAULTS.overlays], leverage: [] };
  if (p.get("symbol")) s.symbol = p.get("symbol");
  if (p.get("exchanges")) s.exchanges = p.get("exchanges").split(",").map((e) => e.trim()).filter(Boolean);
  if (RANGES.includes(p.get("range"))) s.range = p.get("range");
  s.start = time(p.get("start"));
  s.end = time(p.get("end"));
  if (s.start !== null && s.end !== null && !p.get("range")) s.range = "custom";
  if (RESOLUTIONS.has(p.get("res"))) s.res = p.get("res");
  if (SIDES.includes(p.get("side"))) s.side = p.get("side");
  if (SCALE_NAMES.includes(p.get("scale"))) s.scale = p.get("scale");
  const within = num(p.get("within"));
  if (within !== null && within > 0 && within <= 100) s.within = within;
  if (PRICE_AXES.includes(p.get("axis"))) s.axis = p.get("axis");
  s.pmin = num(p.get("pmin"));
  s.pmax = num(p.get("pmax"));
  s.bucket = num(p.get("bucket"));
  if (p.get("leverage")) {
    const wanted = p.get("leverage").split(",").map((b) => b.trim());
    s.leverage = LEVERAGE_IDS.filter((id) => wanted.includes(id));
    if (s.leverage.length === LEVERAGE_IDS.length) s.leverage = [];
  }
  if (p.has("overlays")) {
    const wanted = p.get("overlays").split(",").map((o) => o.trim());
    s.overlays = OVERLAY_IDS.filter((id) => wanted.includes(id));
  }
  return s;
}

/** The query string of a state (defaults left out). */
export function toUrl(s) {
  const p = new URLSearchParams();
  if (s.symbol) p.set("symbol", s.symbol);
  if (s.exchanges.length) p.set("exchanges", s.exchanges.join(","));
  p.set("range", s.range);
  if (s.range === "custom") {
    if (s.start !== null) p.set("start", new Date(s.start).toISOString());
    if (s.end !== null) p.set("end", new Date(s.end).toISOString());
  }
  if (s.res !== "auto") p.set("res", s.res);
  if (s.side !== DEFAULTS.side) p.set("side", s.side);
  if (s.scale !== DEFAULTS.scale) p.set("scale", s.scale);
  if (s.within !== DEFAULTS.within) p.set("within", String(s.within));
  if (s.axis !== DEFAULTS.axis) p.set("axis", s.axis);
  if (s.pmin !== null) p.set("pmin", String(s.pmin));
  if (s.pmax !== null) p.set("pmax", String(s.pmax));
  if (s.bucket !== null) p.set("bucket", String(s.bucket));
  const leverage = LEVERAGE_IDS.filter((id) => s.leverage.includes(id));
  if (leverage.length && leverage.length < LEVERAGE_IDS.length) p.set("leverage", leverage.join(","));
  const overlays = OVERLAY_IDS.filter((id) => s.overlays.includes(id));
  if (overlays.join(",") !== DEFAULTS.overlays.join(",")) p.set("overlays", overlays.join(","));
  return `?${p.toString()}`;
}

/**
 * The heatmap query's variables for a view: one place, because first.js's early request is
 * used only when main.js would ask exactly the same (compared as JSON, so the order matters).
 */
export function heatmapVariables(s, { symbol, exchanges, start, end, interval }) {
  return {
    symbol,
    exchanges,
    start: new Date(start).toISOString(),
    end: new Date(end).toISOString(),
    interval,
    priceMin: s.pmin,
    priceMax: s.pmax,
    // near: the traded range ± near_price_pct; full: the maps' whole span (the API's default)
    withinPct: s.axis === "near" ? STYLE.defaults.near_price_pct : null,
    bucketSize: s.bucket,
    leverage: s.leverage.length ? s.leverage : null,
  };
}
