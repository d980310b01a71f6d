// Canvas panels: the heatmap over time (with candles and the price line), the liquidation map
// beside it on the same price axis, and the colour legend.

import { LUT, LUT32, SCALES, colourIndex, css, legendTicks } from "./colormap.js";
import { niceTicks, price as fmtPrice, timeTicks, usd } from "./format.js";
import { bands, stripHeight } from "./overlays.js";
import { STYLE, colour } from "./shared.js";

// room beside the heatmap: the price axis on the right, the first time label on the left
export const MARGIN = { top: 12, bottom: 28, left: 28, right: 74 };
const STRIP_GAP = 6; // between the heatmap and the overlays' strip under it
// the colours and proportions `liqmap render` draws with too (viewer.json)
const AXIS = colour("muted");
const GRID = "rgba(154,164,178,0.18)";
const PRICE_LINE = colour(STYLE.price_line.colour);
const PRICE_DASH = STYLE.price_line.dash;
const ON_PRICE_LINE = colour("on_accent");
const CANDLE_UP = colour("candle_up");
const CANDLE_DOWN = colour("candle_down");
const CANDLE_BODY = STYLE.candles.body;
export const LONG_COLOR = colour("long");
export const SHORT_COLOR = colour("short");
const LONG_CUMULATIVE = colour("long_cumulative");
const SHORT_CUMULATIVE = colour("short_cumulative");
const { bar_alpha: BAR_ALPHA, bar_reach: BAR_REACH, cumulative_reach: CUMULATIVE_REACH } = STYLE.map;

/** Size a canvas to its CSS box × devicePixelRatio; returns [ctx, width, height] in CSS px. */
function fit(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const { width, height } = canvas.getBoundingClientRect();
  const w = Math.max(1, Math.round(width));
  const h = Math.max(1, Math.round(height));
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return [ctx, w, h];
}

/** The value shown in a cell for a side: long, short, or both summed. */
export function cellValues(hm, side) {
  if (side === "long") return hm.long;
  if (side === "short") return hm.short;
  const out = new Float32Array(hm.long.length);
  for (let k = 0; k < out.length; k++) out[k] = hm.long[k] + hm.short[k];
  return out;
}

export class HeatmapPanel {
  constructor(canvas) {
    this.canvas = canvas;
    this.off = document.createElement("canvas");
    this.geom = null;
  }

  /** Paint the matrix into the offscreen image (one pixel per cell); returns the colour max. */
  paintCells(hm, side, scale) {
    const values = cellValues(hm, side);
    let max = 0;
    for (let k = 0; k < values.length; k++) if (values[k] > max) max = values[k];
    const { rows, columns } = hm;
    this.off.width = Math.max(1, columns);
    this.off.height = Math.max(1, rows);
    const octx = this.off.getContext("2d");
    const image = octx.createImageData(this.off.width, this.off.height);
    const px = new Uint32Array(image.data.buffer);
    const forward = SCALES[scale].forward;
    const inv = max > 0 ? 1 / max : 0;
    // row 0 is the lowest price: it goes to the bottom of the image
    for (let i = 0; i < rows; i++) {
      const src = i * columns;
      const dst = (rows - 1 - i) * columns;
      for (let j = 0; j < columns; j++) {
        px[dst + j] = LUT32[colourIndex(values[src + j], inv, forward)];
      }
    }
    octx.putImageData(image, 0, 0);
    this.max = max;
    return max;
  }

  /**
   * Draw the cells (painted by paintCells), candles, price line, the overlays (`layers`:
   * [{overlay, payload}] of those switched on and loaded) and the axes.
   */
  draw(hm, view, layers = []) {
    const [ctx, w, h] = fit(this.canvas);
    ctx.clearRect(0, 0, w, h);
    const x0 = MARGIN.left;
    const y0 = MARGIN.top;
    const pw = Math.max(10, w - MARGIN.left - MARGIN.right);
    const inner = Math.max(10, h - MARGIN.top - MARGIN.bottom);
    const stripped = layers.filter((l) => l.overlay.strip && l.overlay.count(l.payload) > 0);
    const sh = stripped.length ? stripHeight(inner) : 0;
    const ph = Math.max(10, inner - (sh ? sh + STRIP_GAP : 0));
    const pLo = hm.priceMin;
    const pHi = hm.priceMin + hm.rows * hm.priceStep;
    const g = {
      x0, y0, w: pw, h: ph, pLo, pHi, start: hm.start, end: hm.end,
      xOfTime: (t) => x0 + ((t - hm.start) / (hm.end - hm.start)) * pw,
      yOfPrice: (p) => y0 + (1 - (p - pLo) / (pHi - pLo)) * ph,
      colW: pw / Math.max(1, hm.columns),
      rowH: ph / Math.max(1, hm.rows),
      strip: null,
    };
    this.geom = g;
    ctx.fillStyle = css(0);
    ctx.fillRect(x0, y0, pw, ph);
    if (hm.rows > 0 && hm.columns > 0) {
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(this.off, 0, 0, hm.columns, hm.rows, x0, y0, pw, ph);
    }
    if (hm.filledColumns === 0) {
      ctx.fillStyle = AXIS;
      ctx.font = "14px system-ui, sans-serif";
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText("no liquidation data in this range", x0 + pw / 2, y0 + ph / 2);
    }
    this.drawCandles(ctx, hm, g);
    if (view.price !== null && view.price > pLo && view.price < pHi) {
      priceLine(ctx, g.yOfPrice(view.price), x0, x0 + pw);
    }
    const drawn = {};
    ctx.save();
    ctx.beginPath();
    ctx.rect(x0, y0, pw, ph);
    ctx.clip(); // marks stay inside the plot
    g.free = bands(); // one set of label bands: overlays' labels avoid each other
    // in reverse: the last overlays of the list (max pain) claim their labels' places first
    for (const { overlay, payload } of [...layers].reverse()) {
      if (overlay.heatmap) drawn[overlay.id] = overlay.heatmap(ctx, g, payload, view);
    }
    ctx.restore();
    if (view.hover) {
      const { col, row } = view.hover;
      ctx.strokeStyle = "rgba(255,255,255,0.55)";
      ctx.lineWidth = 1;
      ctx.setLineDash([]);
      ctx.strokeRect(x0 + col * g.colW + 0.5, y0 + (hm.rows - 1 - row) * g.rowH + 0.5,
        Math.max(1, g.colW - 1), Math.max(1, g.rowH - 1));
    }
    if (sh) Object.assign(drawn, this.drawStrip(ctx, g, stripped, y0 + ph + STRIP_GAP, sh));
    this.drawAxes(ctx, hm, g, view, w);
    this.canvas.dataset.plot = [x0, y0, pw, ph].map((v) => v.toFixed(2)).join(",");
    this.canvas.dataset.strip = g.strip ? [x0, g.strip.y0, pw, g.strip.h].map((v) => v.toFixed(2)).join(",") : "";
    this.canvas.dataset.overlays = JSON.stringify(drawn);
    this.canvas.dataset.priceMin = String(pLo);
    this.canvas.dataset.priceMax = String(pHi);
    this.canvas.dataset.start = new Date(hm.start).toISOString();
    this.canvas.dataset.end = new Date(hm.end).toISOString();
    this.canvas.dataset.rows = String(hm.rows);
    this.canvas.dataset.columns = String(hm.columns);
    return g;
  }

  /** The strip under the heatmap: range overlays on one USD scale, shorts up, longs down. */
  drawStrip(ctx, g, layers, top, height) {
    const max = Math.max(0, ...layers.map((l) => l.overlay.strip.max(l.payload)));
    const half = height / 2 - 2;
    const mid = Math.round(top + height / 2) + 0.5;
    const scale = (v) => (max > 0 && v > 0 ? Math.max(1, (v / max) * half) : 0);
    g.strip = { y0: top, h: height, mid, max, scale };
    ctx.fillStyle = colour("panel");
    ctx.fillRect(g.x0, top, g.w, height);
    ctx.strokeStyle = GRID;
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(g.x0, mid);
    ctx.lineTo(g.x0 + g.w, mid);
    ctx.stroke();
    const drawn = {};
    ctx.save();
    ctx.beginPath();
    ctx.rect(g.x0, top, g.w, height);
    ctx.clip();
    // in reverse: the first overlays of the list (realized liquidations) end up on top
    for (const { overlay, payload } of [...layers].reverse()) drawn[overlay.id] = overlay.strip.draw(ctx, g, payload);
    ctx.restore();
    ctx.font = "10px system-ui, sans-serif";
    ctx.fillStyle = AXIS;
    ctx.textAlign = "left";
    ctx.textBaseline = "top";
    ctx.fillText(usd(max), g.x0 + g.w + 7, top); // the scale: the tallest bar, either way
    ctx.textBaseline = "bottom";
    ctx.fillText(usd(max), g.x0 + g.w + 7, top + height);
    ctx.textBaseline = "top";
    ctx.fillText(`${layers.map((l) => l.overlay.label).join(" · ")} · shorts ↑ longs ↓`, g.x0 + 4, top + 2);
    return drawn;
  }

  drawCandles(ctx, hm, g) {
    const body = Math.max(1, Math.min(9, g.colW * CANDLE_BODY));
    for (let j = 0; j < hm.candles.length; j++) {
      const c = hm.candles[j];
      if (!c) continue;
      const x = Math.round(g.x0 + (j + 0.5) * g.colW) + 0.5;
      const up = c.close >= c.open;
      ctx.strokeStyle = up ? CANDLE_UP : CANDLE_DOWN;
      ctx.fillStyle = up ? CANDLE_UP : CANDLE_DOWN;
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(x, g.yOfPrice(c.high));
      ctx.lineTo(x, g.yOfPrice(c.low));
      ctx.stroke();
      const top = g.yOfPrice(Math.max(c.open, c.close));
      const bottom = g.yOfPrice(Math.min(c.open, c.close));
      const height = Math.max(1, bottom - top);
      if (up && body >= 3) ctx.strokeRect(x - body / 2, top, body, height);
      else ctx.fillRect(x - body / 2, top, body, height);
    }
  }

  drawAxes(ctx, hm, g, view, canvasWidth) {
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = AXIS;
    ctx.strokeStyle = AXIS;
    ctx.lineWidth = 1;
    ctx.setLineDash([]);
    const { step, ticks } = niceTicks(g.pLo, g.pHi, Math.max(2, Math.floor(g.h / 48)));
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    for (const p of ticks) {
      const y = Math.round(g.yOfPrice(p)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(g.x0 + g.w, y);
      ctx.lineTo(g.x0 + g.w + 4, y);
      ctx.stroke();
      ctx.fillText(fmtPrice(p, step), g.x0 + g.w + 7, y);
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    const bottom = g.strip ? g.strip.y0 + g.strip.h : g.y0 + g.h;
    const labels = [];
    for (const tick of timeTicks(g.start, g.end, g.w, g.x0, canvasWidth - g.x0 - g.w)) {
      const x = Math.round(g.xOfTime(tick.t)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(x, bottom);
      ctx.lineTo(x, bottom + 4);
      ctx.stroke();
      ctx.font = tick.major ? "bold 11px system-ui, sans-serif" : "11px system-ui, sans-serif";
      ctx.fillText(tick.label, x, bottom + 7);
      const half = ctx.measureText(tick.label).width / 2;
      labels.push({ t: tick.t, label: tick.label, major: tick.major, left: x - half, right: x + half });
    }
    this.canvas.dataset.timeTicks = JSON.stringify(labels); // where each label was drawn (CSS px)
    ctx.strokeStyle = GRID;
    ctx.strokeRect(g.x0 + 0.5, g.y0 + 0.5, g.w - 1, g.h - 1);
    if (view.price !== null && view.price > g.pLo && view.price < g.pHi) {
      priceLabel(ctx, g.yOfPrice(view.price), g.x0 + g.w + 2, fmtPrice(view.price, step / 100));
    }
  }

  /** Column and row under a CSS-pixel point, or null outside the plot. */
  hit(hm, x, y) {
    const g = this.geom;
    if (!g || x < g.x0 || x >= g.x0 + g.w || y < g.y0 || y >= g.y0 + g.h) return null;
    const col = Math.min(hm.columns - 1, Math.floor((x - g.x0) / g.colW));
    const row = Math.min(hm.rows - 1, hm.rows - 1 - Math.floor((y - g.y0) / g.rowH));
    return { col, row };
  }
}

function priceLine(ctx, y, xa, xb) {
  ctx.strokeStyle = PRICE_LINE;
  ctx.lineWidth = 1;
  ctx.setLineDash(PRICE_DASH);
  ctx.beginPath();
  ctx.moveTo(xa, Math.round(y) + 0.5);
  ctx.lineTo(xb, Math.round(y) + 0.5);
  ctx.stroke();
  ctx.setLineDash([]);
}

function priceLabel(ctx, y, x, text) {
  ctx.font = "bold 11px system-ui, sans-serif";
  const width = ctx.measureText(text).width + 8;
  ctx.fillStyle = PRICE_LINE;
  ctx.fillRect(x, y - 8, width, 16);
  ctx.fillStyle = ON_PRICE_LINE;
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  ctx.fillText(text, x + 4, y);
}

/** The liquidation map: bars per level (long below, short above price) and cumulative curves. */
export class MapPanel {
  constructor(canvas) {
    this.canvas = canvas;
    this.geom = null;
  }

  /** `plotHeight`: the heatmap's plot height, so that both share one price axis. */
  draw(map, pLo, pHi, view, layers = [], plotHeight = null) {
    const [ctx, w, h] = fit(this.canvas);
    ctx.clearRect(0, 0, w, h);
    const x0 = 8;
    const y0 = MARGIN.top;
    const pw = Math.max(10, w - 16);
    const own = Math.max(10, h - MARGIN.top - MARGIN.bottom);
    const ph = plotHeight !== null && plotHeight <= own ? plotHeight : own; // stacked on a phone: its own
    const yOfPrice = (p) => y0 + (1 - (p - pLo) / (pHi - pLo)) * ph;
    this.geom = { x0, y0, w: pw, h: ph, pLo, pHi, yOfPrice };
    ctx.fillStyle = colour("panel");
    ctx.fillRect(x0, y0, pw, ph);
    if (!map) {
      this.canvas.dataset.levels = "0";
      this.canvas.dataset.overlays = "{}";
      return;
    }
    const levels = map.levels.filter((l) => l.priceHigh > pLo && l.price < pHi);
    let barMax = 0;
    let cumMax = 0;
    for (const l of levels) {
      barMax = Math.max(barMax, l.longUsd, l.shortUsd);
      cumMax = Math.max(cumMax, l.cumulativeLongUsd, l.cumulativeShortUsd);
    }
    const xBar = (v) => x0 + (barMax > 0 ? (v / barMax) * pw * BAR_REACH : 0);
    const xCum = (v) => x0 + (cumMax > 0 ? (v / cumMax) * pw * CUMULATIVE_REACH : 0);
    const showLong = view.side !== "short";
    const showShort = view.side !== "long";
    for (const l of levels) {
      const top = yOfPrice(Math.min(pHi, l.priceHigh));
      const height = Math.max(1, yOfPrice(Math.max(pLo, l.price)) - top - (ph / levels.length > 3 ? 1 : 0));
      if (showLong && l.longUsd > 0) {
        ctx.fillStyle = LONG_COLOR;
        ctx.globalAlpha = BAR_ALPHA;
        ctx.fillRect(x0, top, xBar(l.longUsd) - x0, height);
      }
      if (showShort && l.shortUsd > 0) {
        ctx.fillStyle = SHORT_COLOR;
        ctx.globalAlpha = BAR_ALPHA;
        ctx.fillRect(x0, top, xBar(l.shortUsd) - x0, height);
      }
    }
    ctx.globalAlpha = 1;
    const curve = (key, color, keep) => {
      ctx.strokeStyle = color;
      ctx.lineWidth = 2;
      ctx.beginPath();
      let started = false;
      for (const l of levels) {
        if (!keep(l)) continue;
        const y = yOfPrice((l.price + l.priceHigh) / 2);
        const x = xCum(l[key]);
        if (started) ctx.lineTo(x, y);
        else ctx.moveTo(x, y);
        started = true;
      }
      ctx.stroke();
    };
    if (showLong) curve("cumulativeLongUsd", LONG_CUMULATIVE, (l) => l.priceHigh <= map.price + map.bucketSize);
    if (showShort) curve("cumulativeShortUsd", SHORT_CUMULATIVE, (l) => l.price >= map.price - map.bucketSize);
    if (map.price > pLo && map.price < pHi) priceLine(ctx, yOfPrice(map.price), x0, x0 + pw);
    const drawn = {};
    ctx.save();
    ctx.beginPath();
    ctx.rect(x0, y0, pw, ph);
    ctx.clip();
    this.geom.free = bands();
    for (const { overlay, payload } of [...layers].reverse()) {
      if (overlay.map) drawn[overlay.id] = overlay.map(ctx, this.geom, payload, view);
    }
    ctx.restore();
    this.canvas.dataset.overlays = JSON.stringify(drawn);
    if (view.hoverLevel) {
      const l = view.hoverLevel;
      ctx.strokeStyle = "rgba(255,255,255,0.6)";
      ctx.lineWidth = 1;
      const top = yOfPrice(l.priceHigh);
      ctx.strokeRect(x0 + 0.5, top + 0.5, pw - 1, Math.max(1, yOfPrice(l.price) - top - 1));
    }
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = AXIS;
    ctx.textBaseline = "top";
    ctx.textAlign = "left";
    ctx.fillText(`bar max ${usd(barMax)}`, x0, y0 + ph + 7);
    ctx.textAlign = "right";
    ctx.fillText(`cumulative max ${usd(cumMax)}`, x0 + pw, y0 + ph + 7);
    this.levels = levels;
    this.canvas.dataset.levels = String(levels.length);
    // what the bars show, summed (a leverage-band filter changes it)
    this.canvas.dataset.longUsd = String(levels.reduce((acc, l) => acc + l.longUsd, 0));
    this.canvas.dataset.shortUsd = String(levels.reduce((acc, l) => acc + l.shortUsd, 0));
  }

  hit(y) {
    const g = this.geom;
    if (!g || !this.levels || y < g.y0 || y > g.y0 + g.h) return null;
    const p = g.pLo + (1 - (y - g.y0) / g.h) * (g.pHi - g.pLo);
    return this.levels.find((l) => l.price <= p && p < l.priceHigh) || null;
  }
}

/** The colour bar with USD ticks for the current maximum and scale. */
export function drawLegend(canvas, max, scale) {
  const [ctx, w, h] = fit(canvas);
  ctx.clearRect(0, 0, w, h);
  const x0 = 8;
  const bw = w - 16;
  for (let i = 0; i < bw; i++) {
    ctx.fillStyle = css(Math.round((i / (bw - 1)) * (LUT.length - 1)));
    ctx.fillRect(x0 + i, 4, 1.5, 12);
  }
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = AXIS;
  ctx.textBaseline = "top";
  const ticks = legendTicks(max, scale);
  for (const { t, label } of ticks) {
    const x = x0 + t * (bw - 1);
    ctx.fillRect(Math.round(x), 16, 1, 4);
    ctx.textAlign = t === 0 ? "left" : t === 1 ? "right" : "center";
    ctx.fillText(label, x, 22);
  }
  canvas.dataset.max = String(max);
  canvas.dataset.ticks = JSON.stringify(ticks);
}

export { LUT };
