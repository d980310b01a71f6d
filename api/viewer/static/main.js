// The liqmap viewer: controls, data loading, live updates. Everything comes from /graphql.

import { ApiError, LiveSocket, decodeMatrix, query, setApiKey } from "./graphql.js";
import { legendCaption } from "./colormap.js";
import { DURATIONS, age, dateTime, inputValue, price as fmtPrice, usd } from "./format.js";
import { HeatmapPanel, MapPanel, cellValues, drawLegend } from "./panels.js";
import { DOCUMENTS, STYLE } from "./shared.js";
import {
  INTERVALS, INTERVAL_LABELS, RANGES, SCALE_NAMES, SIDES, fromUrl, toUrl,
} from "./state.js";

const STALE_AFTER_S = 15 * 60; // newest bar older than this: data is stale
const $ = (id) => document.getElementById(id);

// the documents `liqmap render` sends too (graphql/*.graphql, inlined by the server)
const { catalogue: CATALOGUE, latest: LATEST, heatmap: HEATMAP, details: DETAILS, candles: CANDLES } = DOCUMENTS;
const HEATMAP_UPDATED = DOCUMENTS.live;

const state = fromUrl(location.search);
const heat = new HeatmapPanel($("heatmap"));
const mapPanel = new MapPanel($("map"));
const view = { price: null, hover: null, hoverLevel: null, side: state.side };
let catalogue = { exchanges: [], markets: [] };
let hm = null; // the heatmap on screen (matrices as Float32Array, row-major)
let details = null; // { map, split } shown beside it
let follow = true; // preset ranges follow the newest data
let loadToken = 0;
let lastBar = null; // ms, newest bar close seen
let wsState = "connecting";
let unsubscribe = [];
let refreshTimer = null;
let hoverTimer = null;
let pendingCandles = null;

const live = new LiveSocket((s) => {
  wsState = s;
  updateStatus();
});

// --- messages and status -----------------------------------------------------------------
function showMessage(kind, text, code = "") {
  const box = $("message");
  if (!kind) {
    box.hidden = true;
    box.textContent = "";
    delete box.dataset.kind;
    delete box.dataset.code;
    return;
  }
  box.hidden = false;
  box.dataset.kind = kind;
  box.dataset.code = code;
  box.textContent = text;
}

function errorText(err) {
  if (!(err instanceof ApiError)) return `Something went wrong: ${err.message}`;
  const hint = {
    NOT_FOUND: "Not found",
    BAD_USER_INPUT: "Invalid request",
    RANGE_TOO_LARGE: "Too much data asked for",
    RATE_LIMITED: "Rate limited — try again shortly",
    UNAUTHENTICATED: "This server needs an API key",
    NETWORK: "Network error",
  }[err.code] || "Server error";
  return `${hint}: ${err.message}`;
}

function updateStatus() {
  const el = $("status");
  el.dataset.ws = wsState;
  let text;
  let kind;
  if (wsState !== "open") {
    kind = wsState === "connecting" ? "connecting" : "offline";
    text = wsState === "connecting" ? "connecting…" : "disconnected · retrying";
  } else if (lastBar === null) {
    kind = "stale";
    text = "connected · no data yet";
  } else {
    const old = (Date.now() - lastBar) / 1000;
    kind = old > STALE_AFTER_S ? "stale" : "live";
    text = kind === "live" ? `live · newest bar ${age(old)} ago` : `connected · data stale (${age(old)} old)`;
  }
  el.dataset.state = kind;
  $("status-text").textContent = text;
  el.title = lastBar ? `newest bar ${dateTime(lastBar)}` : "no data yet";
}
setInterval(updateStatus, 30_000);

// --- controls ------------------------------------------------------------------------------
function option(select, value, label) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = label;
  select.append(o);
}

function buildControls() {
  const symbols = [...new Set(catalogue.markets.map((m) => m.symbol))].sort();
  if (!state.symbol) state.symbol = symbols.includes("BTC/USDT:USDT") ? "BTC/USDT:USDT" : symbols[0] || "";
  const sel = $("symbol");
  sel.replaceChildren();
  for (const s of symbols) option(sel, s, s);
  if (state.symbol && !symbols.includes(state.symbol)) option(sel, state.symbol, `${state.symbol} (unknown)`);
  sel.value = state.symbol;

  const ranges = $("ranges");
  ranges.replaceChildren();
  for (const r of RANGES) {
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.range = r;
    b.textContent = r;
    b.addEventListener("click", () => {
      if (r === "custom") {
        state.range = "custom";
        if (hm) {
          state.start = hm.start;
          state.end = hm.end;
        }
        syncControls();
        return;
      }
      state.range = r;
      state.start = state.end = null;
      changed();
    });
    ranges.append(b);
  }
  const res = $("res");
  res.replaceChildren();
  for (const [k, label] of Object.entries(INTERVAL_LABELS)) option(res, k, label);
  const side = $("side");
  side.replaceChildren();
  for (const s of SIDES) option(side, s, STYLE.sides[s].option);
  const scale = $("scale");
  scale.replaceChildren();
  for (const s of SCALE_NAMES) option(scale, s, s);
  buildExchanges();
  syncControls();
}

function buildExchanges() {
  const list = $("exchange-list");
  list.replaceChildren();
  const names = Object.fromEntries(catalogue.exchanges.map((e) => [e.id, e.name]));
  const ids = [...new Set(catalogue.markets.filter((m) => m.symbol === state.symbol).map((m) => m.exchange))].sort();
  for (const id of ids) {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = id;
    box.className = "exchange";
    box.addEventListener("change", () => {
      state.exchanges = [...list.querySelectorAll("input.exchange:checked")].map((b) => b.value);
      changed();
    });
    label.append(box, ` ${id}`);
    label.title = names[id] || id;
    list.append(label);
  }
}

function syncControls() {
  $("symbol").value = state.symbol;
  $("aggregate").checked = state.exchanges.length === 0;
  for (const box of document.querySelectorAll("input.exchange")) box.checked = state.exchanges.includes(box.value);
  for (const b of $("ranges").children) b.setAttribute("aria-pressed", String(b.dataset.range === state.range));
  $("custom").hidden = state.range !== "custom";
  if (state.range === "custom") {
    if (state.start !== null) $("start").value = inputValue(state.start);
    if (state.end !== null) $("end").value = inputValue(state.end);
  }
  $("res").value = state.res;
  $("side").value = state.side;
  $("scale").value = state.scale;
  $("pmin").value = state.pmin ?? "";
  $("pmax").value = state.pmax ?? "";
  $("within").value = String(state.within);
}

function wireControls() {
  $("symbol").addEventListener("change", (e) => {
    state.symbol = e.target.value;
    state.exchanges = [];
    buildExchanges();
    changed();
  });
  $("aggregate").addEventListener("change", () => {
    state.exchanges = [];
    changed();
  });
  $("apply").addEventListener("click", () => {
    const start = Date.parse(`${$("start").value}:00Z`);
    const end = Date.parse(`${$("end").value}:00Z`);
    if (!Number.isFinite(start) || !Number.isFinite(end)) {
      showMessage("error", "Choose both a start and an end time for a custom range.", "BAD_USER_INPUT");
      return;
    }
    state.range = "custom";
    state.start = start;
    state.end = end;
    changed();
  });
  $("res").addEventListener("change", (e) => {
    state.res = e.target.value;
    changed();
  });
  $("side").addEventListener("change", (e) => {
    state.side = e.target.value;
    view.side = state.side;
    pushUrl();
    redraw();
  });
  $("scale").addEventListener("change", (e) => {
    state.scale = e.target.value;
    pushUrl();
    redraw();
  });
  for (const id of ["pmin", "pmax"]) {
    $(id).addEventListener("change", () => {
      const lo = $("pmin").value === "" ? null : Number($("pmin").value);
      const hi = $("pmax").value === "" ? null : Number($("pmax").value);
      state.pmin = lo;
      state.pmax = hi;
      changed();
    });
  }
  $("within").addEventListener("change", (e) => {
    const v = Number(e.target.value);
    if (!(v > 0 && v <= 100)) {
      showMessage("error", "The split window must be between 0 and 100 %.", "BAD_USER_INPUT");
      return;
    }
    state.within = v;
    pushUrl();
    loadDetails(currentAt());
  });
  window.addEventListener("popstate", () => {
    Object.assign(state, fromUrl(location.search));
    view.side = state.side;
    buildExchanges();
    syncControls();
    load();
  });
  window.addEventListener("resize", () => redraw());
  wireHover();
}

function pushUrl() {
  const url = toUrl(state);
  if (url !== location.search) history.pushState(null, "", url);
}

function changed() {
  pushUrl();
  syncControls();
  load();
}

// --- loading -------------------------------------------------------------------------------
const exchangesArg = () => (state.exchanges.length ? state.exchanges : null);

async function resolveWindow(token) {
  if (state.range === "custom" && state.start !== null && state.end !== null) {
    follow = false;
    return [state.start, state.end];
  }
  follow = true;
  const data = await query(LATEST, { symbol: state.symbol, exchanges: exchangesArg() });
  if (token !== loadToken) return null;
  const at = data.liquidationMap ? Date.parse(data.liquidationMap.at) : null;
  const end = at ?? Math.floor(Date.now() / 300_000) * 300_000;
  return [end - DURATIONS[state.range === "custom" ? "24h" : state.range], end, at === null];
}

async function load() {
  const token = ++loadToken;
  document.body.dataset.busy = "true";
  showMessage(null);
  subscribeLive();
  try {
    const window_ = await resolveWindow(token);
    if (!window_) return;
    const [start, end, nothingYet] = window_;
    if (!(end > start)) {
      showMessage("error", "The range must end after it starts.", "BAD_USER_INPUT");
      return;
    }
    const variables = {
      symbol: state.symbol,
      exchanges: exchangesArg(),
      start: new Date(start).toISOString(),
      end: new Date(end).toISOString(),
      interval: state.res === "auto" ? null : state.res,
      priceMin: state.pmin,
      priceMax: state.pmax,
      bucketSize: state.bucket,
    };
    performance.clearMarks();
    performance.clearMeasures();
    const data = await query(HEATMAP, variables, { mark: "liqmap:heatmap" });
    if (token !== loadToken) return;
    hm = toHeatmap(data.heatmap);
    if (hm.coverage.lastBar) lastBar = Math.max(lastBar ?? 0, Date.parse(hm.coverage.lastBar));
    details = null;
    const newest = lastCandle(hm);
    view.price = newest ? newest.close : null;
    redraw();
    performance.mark("liqmap:heatmap:drawn");
    performance.measure("liqmap:heatmap-draw", "liqmap:heatmap:response", "liqmap:heatmap:drawn");
    requestAnimationFrame(() => {
      performance.mark("liqmap:heatmap:painted");
      performance.measure("liqmap:heatmap-paint", "liqmap:heatmap:response", "liqmap:heatmap:painted");
      document.body.dataset.drawn = String(token);
    });
    describe();
    updateStatus();
    if (hm.filledColumns === 0) {
      const newest = hm.coverage.lastBar ? ` The newest materialized bar is ${dateTime(Date.parse(hm.coverage.lastBar))}.` : "";
      showMessage(
        "empty",
        nothingYet
          ? `No liquidation data has been materialized for ${state.symbol} yet.`
          : `No liquidation data for ${state.symbol} between ${dateTime(hm.start)} and ${dateTime(hm.end)}.${newest}`,
        "EMPTY",
      );
    }
    if (hm.filledColumns === 0) {
      details = { map: null, split: null }; // nothing to show beside an empty range
      describeDetails();
      redraw();
      return;
    }
    await loadDetails(currentAt(), token);
  } catch (err) {
    if (token !== loadToken || err.name === "AbortError") return;
    hm = null;
    details = { map: null, split: null };
    redraw();
    describeDetails(); // nothing of a previous view stays on screen beside an error
    for (const id of ["last-bar", "covered", "grid", "model", "missing"]) $(id).textContent = "–";
    $("title").textContent = `${state.symbol} · liquidation heatmap`;
    showMessage("error", errorText(err), err.code || "INTERNAL");
    if (err.code === "UNAUTHENTICATED") askForKey();
  } finally {
    if (token === loadToken) document.body.dataset.busy = "false";
  }
}

function askForKey() {
  const key = prompt("This liqmap server requires an API key (lqm_…):");
  if (key) {
    setApiKey(key.trim());
    live.ws?.close();
    load();
  }
}

function lastCandle(h) {
  for (let j = h.candles.length - 1; j >= 0; j--) if (h.candles[j]) return h.candles[j];
  return null;
}

function toHeatmap(h) {
  const start = Date.parse(h.start);
  const step = h.stepSeconds * 1000;
  const candles = new Array(h.columns).fill(null);
  for (const c of h.candles) {
    const j = Math.round((Date.parse(c.start) - start) / step);
    if (j >= 0 && j < h.columns) candles[j] = c;
  }
  return {
    ...h,
    start,
    end: Date.parse(h.end),
    step,
    long: decodeMatrix(h.long),
    short: decodeMatrix(h.short),
    candles,
  };
}

function currentAt() {
  if (!hm) return null;
  return follow ? null : new Date(hm.end).toISOString();
}

async function loadDetails(at, token = loadToken) {
  if (!hm) return;
  try {
    const data = await query(DETAILS, {
      symbol: state.symbol,
      exchanges: exchangesArg(),
      at,
      priceMin: hm.priceMin,
      priceMax: hm.priceMin + hm.rows * hm.priceStep,
      bucketSize: hm.priceStep,
      within: state.within,
    });
    if (token !== loadToken) return;
    details = { map: data.liquidationMap, split: data.longShortSplit };
    if (details.map && !view.hover) view.price = details.map.price;
    redraw();
    describeDetails();
  } catch (err) {
    if (token !== loadToken) return;
    showMessage("error", errorText(err), err.code || "INTERNAL");
  }
}

// --- drawing -------------------------------------------------------------------------------
function redraw() {
  if (!hm) {
    const ctx = $("heatmap").getContext("2d");
    ctx.clearRect(0, 0, $("heatmap").width, $("heatmap").height);
    mapPanel.draw(null, 0, 1, view);
    return;
  }
  const max = heat.paintCells(hm, state.side, state.scale);
  heat.draw(hm, view);
  mapPanel.draw(details?.map ?? null, hm.priceMin, hm.priceMin + hm.rows * hm.priceStep, view);
  drawLegend($("legend"), max, state.scale);
  $("legend-label").textContent = legendCaption(state.side, state.scale);
}

function describe() {
  const ex = hm.exchanges.length ? hm.exchanges.join(" + ") : "no exchanges";
  const scope = state.exchanges.length ? ex : `all exchanges (${ex})`;
  const title = $("title");
  title.replaceChildren();
  title.append(`${hm.symbol} · ${scope}`);
  const sub = document.createElement("span");
  sub.className = "sub";
  sub.textContent = ` · ${dateTime(hm.start)} → ${dateTime(hm.end)} · ${hm.stepSeconds / 60} min columns`;
  title.append(sub);
  document.title = `${hm.symbol} liquidation heatmap · liqmap`;
  $("last-bar").textContent = hm.coverage.lastBar ? dateTime(Date.parse(hm.coverage.lastBar)) : "none";
  $("last-bar").dataset.atMs = hm.coverage.lastBar ? String(Date.parse(hm.coverage.lastBar)) : "";
  $("covered").textContent = hm.coverage.exchanges.join(", ") || "–";
  $("grid").textContent = `${fmtPrice(hm.priceStep, hm.priceStep)} USD × ${hm.rows} rows, ${hm.columns} columns (${hm.resolution} snapshots)`;
  $("model").textContent = hm.model.version;
  $("missing").textContent = hm.coverage.missingDatasets.join(", ") || "none";
}

function describeDetails() {
  const map = details.map;
  const split = details.split;
  $("map-at").textContent = map ? dateTime(Date.parse(map.at)) : "–";
  $("map-at").dataset.atMs = map ? String(Date.parse(map.at)) : "";
  $("map-label").textContent = map ? `Liquidation map · ${dateTime(Date.parse(map.at))}` : "Liquidation map (no data)";
  $("map-price").textContent = map ? fmtPrice(map.price, 0.1) : "–";
  $("map-long").textContent = map ? usd(map.totalLongUsd) : "–";
  $("map-short").textContent = map ? usd(map.totalShortUsd) : "–";
  $("map-pain-long").textContent = map?.maxPainLong ? `${fmtPrice(map.maxPainLong.price)} (${usd(map.maxPainLong.cumulativeUsd)})` : "–";
  $("map-pain-short").textContent = map?.maxPainShort ? `${fmtPrice(map.maxPainShort.price)} (${usd(map.maxPainShort.cumulativeUsd)})` : "–";
  const total = split ? split.longUsd + split.shortUsd : 0;
  const longPct = total > 0 ? (100 * split.longUsd) / total : 50;
  $("split-long").style.width = total > 0 ? `${longPct}%` : "0";
  $("split-short").style.width = total > 0 ? `${100 - longPct}%` : "0";
  $("split-long-text").textContent = split ? `longs ${usd(split.longUsd)} (${longPct.toFixed(0)}%)` : "–";
  $("split-short-text").textContent = split ? `shorts ${usd(split.shortUsd)} (${(100 - longPct).toFixed(0)}%)` : "–";
  $("split-ratio").textContent = split?.ratio != null ? `L/S ${split.ratio.toFixed(2)}` : "–";
  $("split").dataset.long = split ? String(split.longUsd) : "";
  $("split").dataset.short = split ? String(split.shortUsd) : "";
  const body = $("split-table").tBodies[0];
  body.replaceChildren();
  for (const row of split?.perExchange ?? []) {
    const tr = document.createElement("tr");
    for (const text of [row.exchange, usd(row.longUsd), usd(row.shortUsd), row.ratio != null ? row.ratio.toFixed(2) : "–"]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    body.append(tr);
  }
}

// --- hover -----------------------------------------------------------------------------------
function wireHover() {
  const tip = $("tooltip");
  const canvas = $("heatmap");
  canvas.addEventListener("mousemove", (e) => {
    if (!hm) return;
    const r = canvas.getBoundingClientRect();
    const hit = heat.hit(hm, e.clientX - r.left, e.clientY - r.top);
    if (!hit) {
      leave();
      return;
    }
    const same = view.hover && view.hover.col === hit.col && view.hover.row === hit.row;
    view.hover = hit;
    if (!same) heat.draw(hm, view);
    const k = hit.row * hm.columns + hit.col;
    const colStart = hm.start + hit.col * hm.step;
    const lo = hm.priceMin + hit.row * hm.priceStep;
    const c = hm.candles[hit.col];
    tip.hidden = false;
    tip.innerHTML =
      `<b>${dateTime(colStart)}</b> + ${hm.stepSeconds / 60} min<br>` +
      `price ${fmtPrice(lo, hm.priceStep)} – ${fmtPrice(lo + hm.priceStep, hm.priceStep)}<br>` +
      `<span class="long-text">long ${usd(hm.long[k])}</span> · <span class="short-text">short ${usd(hm.short[k])}</span>` +
      (c ? `<br>O ${fmtPrice(c.open, 0.1)} H ${fmtPrice(c.high, 0.1)} L ${fmtPrice(c.low, 0.1)} C ${fmtPrice(c.close, 0.1)}` : "");
    place(tip, e);
    clearTimeout(hoverTimer);
    hoverTimer = setTimeout(() => loadDetails(new Date(colStart + hm.step).toISOString()), 150);
  });
  canvas.addEventListener("mouseleave", leave);
  const mapCanvas = $("map");
  mapCanvas.addEventListener("mousemove", (e) => {
    if (!details?.map) return;
    const r = mapCanvas.getBoundingClientRect();
    const level = mapPanel.hit(e.clientY - r.top);
    view.hoverLevel = level;
    redrawMap();
    if (!level) {
      tip.hidden = true;
      return;
    }
    const side = level.priceHigh <= details.map.price ? "long" : level.price >= details.map.price ? "short" : "both";
    const step = details.map.bucketSize;
    tip.hidden = false;
    tip.innerHTML =
      `<b>${fmtPrice(level.price, step)} – ${fmtPrice(level.priceHigh, step)}</b> (${side} side)<br>` +
      `<span class="long-text">long ${usd(level.longUsd)}</span> · cumulative ${usd(level.cumulativeLongUsd)}<br>` +
      `<span class="short-text">short ${usd(level.shortUsd)}</span> · cumulative ${usd(level.cumulativeShortUsd)}`;
    place(tip, e);
  });
  mapCanvas.addEventListener("mouseleave", () => {
    view.hoverLevel = null;
    tip.hidden = true;
    redrawMap();
  });
}

function redrawMap() {
  if (hm) mapPanel.draw(details?.map ?? null, hm.priceMin, hm.priceMin + hm.rows * hm.priceStep, view);
}

function place(tip, e) {
  const x = Math.min(window.innerWidth - tip.offsetWidth - 8, e.clientX + 14);
  const y = Math.min(window.innerHeight - tip.offsetHeight - 8, e.clientY + 14);
  tip.style.left = `${x}px`;
  tip.style.top = `${y}px`;
}

function leave() {
  $("tooltip").hidden = true;
  clearTimeout(hoverTimer);
  if (view.hover) {
    view.hover = null;
    if (hm) heat.draw(hm, view);
    loadDetails(currentAt());
  }
}

// --- live updates ----------------------------------------------------------------------------
function subscribeLive() {
  for (const stop of unsubscribe) stop();
  unsubscribe = [];
  if (!state.symbol) return;
  const targets = state.exchanges.length > 1 ? state.exchanges.map((e) => [e]) : [state.exchanges];
  const symbol = state.symbol;
  for (const t of targets) {
    unsubscribe.push(
      live.subscribe(
        HEATMAP_UPDATED,
        { symbol, exchanges: t.length ? t : null },
        (data) => onColumn(data.heatmapUpdated, targets.length > 1),
        (err) => {
          if (symbol === state.symbol) console.warn("live updates:", err.message);
        },
      ),
    );
  }
}

/** A new snapshot column arrived: place it (or refetch when several exchanges are summed). */
function onColumn(col, summed) {
  const at = Date.parse(col.at);
  lastBar = Math.max(lastBar ?? 0, at);
  updateStatus();
  if (!hm || col.symbol !== state.symbol) return;
  if (summed) {
    scheduleRefresh(true);
    return;
  }
  if (hm.resolution === "1h" && at % 3_600_000 !== 0) return; // only hourly snapshots there
  let j = Math.floor((at - 1 - hm.start) / hm.step);
  if (j < 0) return;
  if (j >= hm.columns) {
    if (!follow) return;
    const shift = j - hm.columns + 1;
    if (shift >= hm.columns) {
      scheduleRefresh(true);
      return;
    }
    shiftColumns(shift);
    j = hm.columns - 1;
  }
  placeColumn(col, j);
  view.price = col.price;
  hm.coverage = { ...hm.coverage, lastBar: new Date(lastBar).toISOString() };
  redraw();
  describe();
  const colStart = hm.start + j * hm.step;
  pendingCandles = pendingCandles === null ? colStart : Math.min(pendingCandles, colStart);
  scheduleRefresh(false);
}

function shiftColumns(shift) {
  const { rows, columns } = hm;
  for (const key of ["long", "short"]) {
    const old = hm[key];
    const next = new Float32Array(old.length);
    for (let i = 0; i < rows; i++) next.set(old.subarray(i * columns + shift, (i + 1) * columns), i * columns);
    hm[key] = next;
  }
  hm.candles = hm.candles.slice(shift).concat(new Array(shift).fill(null));
  hm.start += shift * hm.step;
  hm.end += shift * hm.step;
}

function placeColumn(col, j) {
  const long = decodeMatrix(col.long);
  const short = decodeMatrix(col.short);
  const factor = Math.max(1, Math.round(hm.priceStep / col.priceStep));
  const g0 = Math.round(col.priceMin / col.priceStep);
  const firstRow = Math.round(hm.priceMin / hm.priceStep);
  for (let i = 0; i < hm.rows; i++) {
    hm.long[i * hm.columns + j] = 0;
    hm.short[i * hm.columns + j] = 0;
  }
  for (let e = 0; e < long.length; e++) {
    const r = Math.floor((g0 + e) / factor) - firstRow;
    if (r < 0 || r >= hm.rows) continue;
    hm.long[r * hm.columns + j] += long[e];
    hm.short[r * hm.columns + j] += short[e];
  }
  let filled = 0;
  const values = cellValues(hm, "both");
  for (let c = 0; c < hm.columns; c++) {
    for (let i = 0; i < hm.rows; i++) {
      if (values[i * hm.columns + c] !== 0) {
        filled++;
        break;
      }
    }
  }
  hm.filledColumns = Math.max(hm.filledColumns, filled);
  if (hm.filledColumns > 0 && $("message").dataset.kind === "empty") showMessage(null);
}

function scheduleRefresh(full) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(async () => {
    if (full) {
      load();
      return;
    }
    const token = loadToken;
    if (pendingCandles !== null && hm && hm.exchanges.length) {
      const from = pendingCandles;
      pendingCandles = null;
      try {
        const interval = Object.keys(INTERVALS).find((k) => INTERVALS[k] * 1000 === hm.step) || null;
        const exchange = [...hm.exchanges].sort()[0];
        const data = await query(CANDLES, {
          symbol: state.symbol, exchange, start: new Date(from).toISOString(),
          end: new Date(hm.end).toISOString(), interval,
        });
        if (token !== loadToken) return;
        for (const c of data.candles) {
          const j = Math.round((Date.parse(c.start) - hm.start) / hm.step);
          if (j >= 0 && j < hm.columns) hm.candles[j] = c;
        }
      } catch (err) {
        console.warn("candles refresh failed:", err.message);
      }
    }
    if (!view.hover) await loadDetails(currentAt(), token);
    else redraw();
    document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
  }, 300);
}

// --- start -----------------------------------------------------------------------------------
async function start() {
  wireControls();
  try {
    catalogue = await query(CATALOGUE);
  } catch (err) {
    showMessage("error", errorText(err), err.code || "INTERNAL");
    if (err.code === "UNAUTHENTICATED") askForKey();
    return;
  }
  buildControls();
  if (!state.symbol) {
    showMessage("empty", "No markets are stored yet: run `liqmap up` (or `liqmap ingest`) first.", "EMPTY");
    return;
  }
  history.replaceState(null, "", toUrl(state));
  live.connect();
  load();
}

start();
