// The liqmap viewer: controls, data loading, live updates. Everything comes from /graphql.

import { ApiError, LiveSocket, decodeMatrix, query, receive, request, setApiKey } from "./graphql.js";
import { legendCaption } from "./colormap.js";
import { DURATIONS, age, dateTime, inputValue, price as fmtPrice, usd } from "./format.js";
import { intervalLabel, options, presetWindow, readable } from "./limits.js";
import { OVERLAYS } from "./overlays.js";
import { HeatmapPanel, MapPanel, cellValues, drawLegend } from "./panels.js";
import { early as firstAnswers } from "./first.js";
import { DOCUMENTS, STYLE } from "./shared.js";
import { LEVERAGE_IDS, PRICE_AXES, RANGES, SCALE_NAMES, SIDES, fromUrl, heatmapVariables, toUrl } from "./state.js";

const STALE_AFTER_S = 15 * 60; // newest bar older than this: data is stale
const DEFAULT_SYMBOL = STYLE.defaults.symbol; // shown when the address names none and it is stored
const $ = (id) => document.getElementById(id);

// the documents `liqmap render` sends too (graphql/*.graphql, inlined by the server)
const {
  catalogue: CATALOGUE, limits: LIMITS, latest: LATEST, heatmap: HEATMAP, details: DETAILS, candles: CANDLES,
} = DOCUMENTS;
const HEATMAP_UPDATED = DOCUMENTS.live;

const state = fromUrl(location.search);
const heat = new HeatmapPanel($("heatmap"));
const mapPanel = new MapPanel($("map"));
const view = { price: null, hover: null, hoverLevel: null, side: state.side };
let catalogue = { exchanges: [], markets: [] };
let limits = null; // what the API accepts (its limits field)
let resOptions = []; // the intervals for the current range, each with why it is refused (or null)
const overlayData = new Map(); // overlay id → { payload, error }
let detailsAt = null; // the instant of the map shown (null: the newest)
let mapAtWanted = null; // the instant of the map the map overlays were last asked for
let guessed = false; // the symbol is the default, not one the address or the user chose
let detailsSeq = 0;
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
  return `${hint}: ${readable(err.message)}`;
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

/** The symbol menu and the exchanges of the symbol, from the catalogue. */
function buildSymbols() {
  const symbols = [...new Set(catalogue.markets.map((m) => m.symbol))].sort();
  const sel = $("symbol");
  sel.replaceChildren();
  for (const s of symbols) option(sel, s, s);
  if (state.symbol && !symbols.includes(state.symbol)) option(sel, state.symbol, `${state.symbol} (unknown)`);
  sel.value = state.symbol;
  buildExchanges();
  syncControls();
}

/** The controls that need only the limits (the symbol's come with the catalogue). */
function buildControls() {
  if (state.symbol) option($("symbol"), state.symbol, state.symbol);
  const ranges = $("ranges");
  ranges.replaceChildren();
  const longest = limits.maxSpanDays * 86_400_000;
  for (const r of RANGES.filter((name) => name === "custom" || DURATIONS[name] <= longest)) {
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
  buildResolutions();
  const side = $("side");
  side.replaceChildren();
  for (const s of SIDES) option(side, s, STYLE.sides[s].option);
  const scale = $("scale");
  scale.replaceChildren();
  for (const s of SCALE_NAMES) option(scale, s, s);
  const axis = $("axis");
  axis.replaceChildren();
  for (const a of PRICE_AXES) {
    const label = a === "near" ? `${STYLE.price_axes[a]} (±${STYLE.defaults.near_price_pct} %)` : STYLE.price_axes[a];
    option(axis, a, label);
  }
  buildOverlays();
  buildLeverage();
  syncControls();
}

/** The leverage-band control: one checkbox per band; all checked is the whole map. */
function buildLeverage() {
  const list = $("leverage-list");
  list.replaceChildren();
  for (const band of STYLE.leverage_bands) {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = band.id;
    box.id = `leverage-${band.id}`;
    box.addEventListener("change", () => {
      const checked = [...list.querySelectorAll("input")].filter((b) => b.checked).map((b) => b.value);
      if (!checked.length) {
        box.checked = true; // at least one band: unchecking the last one would show nothing
        return;
      }
      state.leverage = checked.length === LEVERAGE_IDS.length ? [] : checked;
      changed();
    });
    label.append(box, band.label);
    list.append(label);
  }
}

let cataloguePending = null;

/** The catalogue (markets and exchanges), asked for once the first heatmap is on its way: the
 * symbol shown is known before it (the address's, or the default's newest map was found). */
function loadCatalogue() {
  cataloguePending ??= query(CATALOGUE).then((data) => {
    catalogue = data;
    buildSymbols();
  });
  return cataloguePending;
}

/** The resolution menu: auto and the API's intervals, those it would refuse disabled with why. */
function buildResolutions() {
  const res = $("res");
  res.replaceChildren();
  const auto = resOptions.find((o) => o.auto);
  option(res, "auto", auto ? `auto (${intervalLabel(auto.interval)})` : "auto");
  const known = resOptions.length ? resOptions : limits.intervals.map((i) => ({ ...i, reason: null }));
  for (const o of known) {
    option(res, o.interval, o.reason ? `${intervalLabel(o.interval)} (n/a)` : intervalLabel(o.interval));
    const el = res.lastElementChild;
    el.disabled = o.reason !== null;
    if (o.reason) el.title = `${intervalLabel(o.interval)} columns: ${o.reason}`;
  }
  res.value = state.res;
}

/** One labelled checkbox per overlay, with a note of what it shows. */
function buildOverlays() {
  const list = $("overlay-list");
  list.replaceChildren();
  for (const o of OVERLAYS) {
    const label = document.createElement("label");
    label.className = "overlay";
    label.dataset.overlay = o.id;
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = o.id;
    box.id = `overlay-${o.id}`;
    box.addEventListener("change", () => toggleOverlay(o, box.checked));
    const swatch = document.createElement("i");
    swatch.className = `swatch overlay-${o.id}`;
    const note = document.createElement("span");
    note.className = "note";
    label.append(box, swatch, o.label, note);
    list.append(label);
  }
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
  for (const box of document.querySelectorAll("#overlay-list input")) box.checked = state.overlays.includes(box.value);
  for (const box of document.querySelectorAll("#leverage-list input")) {
    box.checked = !state.leverage.length || state.leverage.includes(box.value);
  }
  const note = $("leverage-note");
  note.hidden = !state.leverage.length;
  note.textContent = state.leverage.length ? "heatmap and map show only the checked bands" : "";
  $("side").value = state.side;
  $("scale").value = state.scale;
  $("axis").value = state.axis;
  $("pmin").value = state.pmin ?? "";
  $("pmax").value = state.pmax ?? "";
  $("within").value = String(state.within);
}

function wireControls() {
  $("symbol").addEventListener("change", (e) => {
    state.symbol = e.target.value;
    guessed = false;
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
  $("axis").addEventListener("change", (e) => {
    state.axis = e.target.value;
    changed();
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

/** Rows of the heatmap when the price range is given (to check the API's cell limit), else null. */
function knownRows() {
  const size = state.bucket ?? (hm && hm.symbol === state.symbol ? hm.priceStep : null);
  if (state.pmin === null || state.pmax === null || !size || !(state.pmax > state.pmin)) return null;
  return Math.ceil(state.pmax / size - 1e-9) - Math.floor(state.pmin / size + 1e-9);
}

/**
 * The range to ask for and its interval: a preset ends at the last whole column of the newest
 * materialized map (not the wall clock: replayed data is old). Intervals the API would refuse
 * are disabled in the menu; a refused choice falls back to auto, with a notice saying why.
 */
async function resolveWindow(token, early) {
  const custom = state.range === "custom" && state.start !== null && state.end !== null;
  follow = !custom;
  const latestVars = { symbol: state.symbol, exchanges: exchangesArg() };
  const data = early && JSON.stringify(early.variables) === JSON.stringify(latestVars)
    ? await receive(early.response)
    : await query(LATEST, latestVars);
  if (token !== loadToken) return null;
  const at = data.liquidationMap ? Date.parse(data.liquidationMap.at) : null;
  const fineFrom = data.limits.fineResolutionFrom ? Date.parse(data.limits.fineResolutionFrom) : null;
  const newest = at ?? Math.floor(Date.now() / 300_000) * 300_000;
  const duration = DURATIONS[state.range] ?? DURATIONS["24h"];
  const windowAt = custom ? () => [state.start, state.end] : (seconds) => presetWindow(newest, duration, seconds);
  const { all, auto } = options(limits, fineFrom, windowAt, knownRows());
  resOptions = all.map((o) => ({ ...o, auto: o === auto }));
  let notice = null;
  if (state.res !== "auto") {
    const chosen = all.find((o) => o.interval === state.res);
    if (chosen && chosen.reason === null) {
      return { start: chosen.start, end: chosen.end, interval: chosen.interval, nothingYet: at === null, notice };
    }
    const why = chosen ? chosen.reason : "this server does not offer them";
    notice = `${intervalLabel(state.res)} columns are not available for this range: ${why}.` +
      (auto ? ` Showing ${intervalLabel(auto.interval)} columns (auto) instead.` : "");
    state.res = "auto";
    history.replaceState(null, "", toUrl(state));
  }
  buildResolutions();
  if (!auto) {
    const coarsest = all[all.length - 1];
    const reason = coarsest ? `at ${intervalLabel(coarsest.interval)} columns ${coarsest.reason}` : "no interval fits";
    return { refused: `This range cannot be shown: ${reason}.` };
  }
  return { start: auto.start, end: auto.end, interval: null, nothingYet: at === null, notice };
}

/**
 * Load the view. `early`: first.js's requests ({latest: {variables, response}, heatmap}), each
 * used if it asks what this view needs.
 */
async function load(early = null) {
  const token = ++loadToken;
  document.body.dataset.busy = "true";
  showMessage(null);
  try {
    const window_ = await resolveWindow(token, early?.latest ?? null);
    if (!window_) return;
    if (window_.refused) {
      clearView();
      showMessage("error", window_.refused, "RANGE_TOO_LARGE");
      return;
    }
    const { start, end, nothingYet, notice } = window_;
    if (!(end > start)) {
      showMessage("error", "The range must end after it starts.", "BAD_USER_INPUT");
      return;
    }
    if (notice) showMessage("info", notice, "ADJUSTED");
    const variables = heatmapVariables(state, {
      symbol: state.symbol,
      exchanges: exchangesArg(),
      start,
      end,
      interval: window_.interval,
    });
    performance.clearMarks();
    performance.clearMeasures();
    const sent = early?.heatmap && JSON.stringify(early.heatmap.variables) === JSON.stringify(variables)
      ? early.heatmap
      : null;
    if (early) early.taken = true;
    if (sent) performance.mark("liqmap:heatmap:sent", { startTime: sent.sentAt });
    const data = sent
      ? await receive(sent.response, "liqmap:heatmap")
      : await query(HEATMAP, variables, { mark: "liqmap:heatmap" });
    if (token !== loadToken) return;
    hm = toHeatmap(data.heatmap);
    if (hm.coverage.lastBar) lastBar = Math.max(lastBar ?? 0, Date.parse(hm.coverage.lastBar));
    details = null;
    for (const o of OVERLAYS) overlayData.delete(o.id); // they describe the previous view
    const newest = lastCandle(hm);
    view.price = newest ? newest.close : null;
    redraw();
    performance.mark("liqmap:heatmap:drawn");
    performance.measure("liqmap:heatmap-draw", "liqmap:heatmap:response", "liqmap:heatmap:drawn");
    const painted = new Promise((resolve) => requestAnimationFrame(() => {
      performance.mark("liqmap:heatmap:painted");
      performance.measure("liqmap:heatmap-paint", "liqmap:heatmap:response", "liqmap:heatmap:painted");
      if (!performance.getEntriesByName("liqmap:first-paint").length) {
        // from the start of the navigation to the first heatmap on screen
        performance.measure("liqmap:first-paint", { start: 0, end: "liqmap:heatmap:painted" });
      }
      document.body.dataset.drawn = String(token);
      resolve();
    }));
    describe();
    updateStatus();
    // the rest (map, overlays, catalogue, live updates) once the heatmap is on screen, so that
    // neither the browser nor the server works on them meanwhile (a hidden tab has no frames)
    await Promise.race([painted, new Promise((resolve) => setTimeout(resolve, 100))]);
    if (token !== loadToken) return;
    subscribeLive();
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
      details = { map: null, whole: null, split: null }; // nothing to show beside an empty range
      describeDetails();
      redraw();
      await loadCatalogue();
      return;
    }
    await Promise.all([
      loadDetails(currentAt(), token),
      loadOverlays("range", token).then(redrawIf(token)),
      loadCatalogue(),
    ]);
  } catch (err) {
    if (token !== loadToken || err.name === "AbortError") return;
    if (err.code === "NOT_FOUND" && guessed) {
      // the default symbol is not stored: the first of those that are, if any
      guessed = false;
      await loadCatalogue().catch(() => {});
      const first = [...new Set(catalogue.markets.map((m) => m.symbol))].sort()[0];
      if (first) {
        state.symbol = first;
        history.replaceState(null, "", toUrl(state));
        buildSymbols();
        load();
        return;
      }
      clearView();
      showMessage("empty", "No markets are stored yet: run `liqmap up` (or `liqmap ingest`) first.", "EMPTY");
      return;
    }
    clearView();
    showMessage("error", errorText(err), err.code || "INTERNAL");
    if (err.code === "UNAUTHENTICATED") askForKey();
    loadCatalogue().catch(() => {}); // the symbol menu, to choose another
  } finally {
    if (token === loadToken) {
      document.body.dataset.busy = "false";
      document.body.dataset.loaded = String(token);
      live.connect(); // the status badge tells about the socket even when nothing is shown
    }
  }
}

/** Nothing of a previous view stays on screen beside an error. */
function clearView() {
  hm = null;
  details = { map: null, whole: null, split: null };
  redraw();
  describeDetails();
  for (const id of ["last-bar", "covered", "grid", "model", "missing"]) $(id).textContent = "–";
  $("title").textContent = `${state.symbol} · liquidation heatmap`;
}

function askForKey() {
  const key = prompt("This liqmap server requires an API key (lqm_…):");
  if (key) {
    setApiKey(key.trim());
    live.ws?.close();
    if (limits) load();
    else boot(); // the catalogue and limits were refused too
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
  const seq = ++detailsSeq;
  try {
    const [data] = await Promise.all([
      query(DETAILS, {
        symbol: state.symbol,
        exchanges: exchangesArg(),
        at,
        priceMin: hm.priceMin,
        priceMax: hm.priceMin + hm.rows * hm.priceStep,
        bucketSize: hm.priceStep,
        within: state.within,
        leverage: state.leverage.length ? state.leverage : null, // the API sums those bands
      }),
      loadOverlays("map", token, at),
    ]);
    if (token !== loadToken || seq !== detailsSeq) return;
    detailsAt = at;
    details = { map: data.liquidationMap, whole: data.whole, split: data.longShortSplit };
    if (details.map && !view.hover) view.price = details.map.price;
    redraw();
    describeDetails();
  } catch (err) {
    if (token !== loadToken) return;
    showMessage("error", errorText(err), err.code || "INTERNAL");
  }
}

// --- overlays --------------------------------------------------------------------------------
/** What an overlay's variables are built from: the view, the heatmap, the map's instant. */
function overlayContext(at) {
  const interval = limits.intervals.find((i) => i.seconds === hm.stepSeconds)?.interval ?? null;
  return { state, hm, at, interval };
}

/** A redraw, unless a newer load has started meanwhile. */
const redrawIf = (token) => () => {
  if (token === loadToken) redraw();
};

/** Fetch the switched-on overlays of one scope ("range" or "map") for the view on screen. */
async function loadOverlays(scope, token, at = detailsAt) {
  if (!hm) return;
  const wanted = OVERLAYS.filter((o) => o.scope === scope && state.overlays.includes(o.id));
  await Promise.all(wanted.map((o) => loadOverlay(o, overlayContext(at), token)));
}

async function loadOverlay(o, context, token) {
  setOverlayNote(o, "loading", "…");
  if (o.scope === "map") mapAtWanted = context.at;
  try {
    const data = await query(o.query, o.variables(context, o));
    if (token !== loadToken || !state.overlays.includes(o.id)) return;
    if (o.scope === "map" && context.at !== mapAtWanted) return; // a later map was asked for
    const payload = o.prepare(data, context);
    overlayData.set(o.id, { payload, error: null });
    setOverlayNote(o, o.count(payload) ? "drawn" : "empty", o.describe(payload));
  } catch (err) {
    if (token !== loadToken) return;
    overlayData.set(o.id, { payload: null, error: err });
    setOverlayNote(o, "error", err instanceof ApiError ? readable(err.message) : err.message);
  }
}

function setOverlayNote(o, kind, text) {
  const label = document.querySelector(`#overlay-list label[data-overlay="${o.id}"]`);
  if (!label) return;
  label.dataset.state = kind;
  label.querySelector(".note").textContent = kind === "off" ? "" : ` — ${text}`;
}

/** The overlays switched on and loaded, as the panels draw them. */
function layers() {
  return OVERLAYS.filter((o) => state.overlays.includes(o.id) && overlayData.get(o.id)?.payload)
    .map((o) => ({ overlay: o, payload: overlayData.get(o.id).payload }));
}

async function toggleOverlay(o, on) {
  state.overlays = OVERLAYS.map((x) => x.id).filter((id) => (id === o.id ? on : state.overlays.includes(id)));
  pushUrl();
  if (!on) {
    overlayData.delete(o.id);
    setOverlayNote(o, "off", "");
    redraw();
    return;
  }
  if (!hm) return;
  await loadOverlay(o, overlayContext(detailsAt), loadToken);
  redraw();
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
  const on = layers();
  const g = heat.draw(hm, view, on);
  mapPanel.draw(details?.map ?? null, hm.priceMin, hm.priceMin + hm.rows * hm.priceStep, view, on, g.h);
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
  const step = limits.intervals.find((i) => i.seconds === hm.stepSeconds);
  const columns = step ? intervalLabel(step.interval) : `${hm.stepSeconds / 60} min`;
  sub.textContent = ` · ${dateTime(hm.start)} → ${dateTime(hm.end)} · ${columns} columns`;
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
  const whole = details.whole;
  const split = details.split;
  $("map-at").textContent = map ? dateTime(Date.parse(map.at)) : "–";
  $("map-at").dataset.atMs = map ? String(Date.parse(map.at)) : "";
  $("map-label").textContent = map ? `Liquidation map · ${dateTime(Date.parse(map.at))}` : "Liquidation map (no data)";
  $("map-price").textContent = map ? fmtPrice(map.price, 0.1) : "–";
  // the whole map's totals do not change with the chart's price range; the view's say "in view"
  $("map-long").textContent = whole ? usd(whole.totalLongUsd) : "–";
  $("map-short").textContent = whole ? usd(whole.totalShortUsd) : "–";
  $("map-span").textContent = whole ? `${fmtPrice(whole.priceMin)} – ${fmtPrice(whole.priceMax)}` : "–";
  $("view-long").textContent = map ? usd(map.totalLongUsd) : "–";
  $("view-short").textContent = map ? usd(map.totalShortUsd) : "–";
  $("view-span").textContent = map ? `${fmtPrice(map.priceMin)} – ${fmtPrice(map.priceMax)}` : "–";
  $("mapinfo").dataset.wholeLong = whole ? String(whole.totalLongUsd) : "";
  $("mapinfo").dataset.viewLong = map ? String(map.totalLongUsd) : "";
  // max pain: the reach that liquidates the most of the side per percent of move (model v2)
  const pain = (p, sign) => `${fmtPrice(p.price)} (${sign}${p.distancePct.toFixed(1)} %, ${usd(p.cumulativeUsd)})`;
  $("map-pain-long").textContent = whole?.maxPainLong ? pain(whole.maxPainLong, "−") : "–";
  $("map-pain-short").textContent = whole?.maxPainShort ? pain(whole.maxPainShort, "+") : "–";
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
    if (!same) heat.draw(hm, view, layers());
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
  if (hm) mapPanel.draw(details?.map ?? null, hm.priceMin, hm.priceMin + hm.rows * hm.priceStep, view, layers(), heat.geom?.h);
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
    if (hm) heat.draw(hm, view, layers());
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
        { symbol, exchanges: t.length ? t : null, leverage: state.leverage.length ? state.leverage : null },
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
  const wanted = state.leverage.length ? state.leverage : LEVERAGE_IDS;
  // the API labels its bands as viewer.json's `cli` names them
  const bands = STYLE.leverage_bands.filter((b) => wanted.includes(b.id)).map((b) => b.cli);
  if (JSON.stringify(col.leverageBands) !== JSON.stringify(bands)) return; // before a band change
  if (summed) {
    // one column per exchange: the summed view refetches instead
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
        const interval = limits.intervals.find((i) => i.seconds * 1000 === hm.step)?.interval ?? null;
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
    await loadOverlays("range", token);
    if (!view.hover) await loadDetails(currentAt(), token);
    else redraw();
    document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
  }, 300);
}

// --- start -----------------------------------------------------------------------------------
async function boot() {
  // first.js has the limits and the newest map of the address's symbol (or the default), and
  // may have sent the first heatmap request; the catalogue follows the first heatmap
  const early = firstAnswers.limits ? firstAnswers : null;
  const asked = early?.limits ?? request(LIMITS);
  firstAnswers.limits = null; // answers are read once
  try {
    ({ limits } = await receive(asked));
  } catch (err) {
    showMessage("error", errorText(err), err.code || "INTERNAL");
    if (err.code === "UNAUTHENTICATED") askForKey();
    return;
  }
  if (!state.symbol) {
    state.symbol = DEFAULT_SYMBOL;
    guessed = true;
  }
  buildControls();
  history.replaceState(null, "", toUrl(state));
  load(early); // the live socket opens with the first subscription
}

function start() {
  wireControls();
  boot();
}

start();
