// Formatting and axis ticks (all times UTC). The USD units and time-tick steps come from
// viewer.json (shared.js); `liqmap render` labels with the same rules (api/viewer/labels.py).

import { STYLE } from "./shared.js";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** $1.23B / $456.7M / $12.3K / $512 / -$5 */
export function usd(value) {
  const v = Math.abs(value);
  const sign = value < 0 ? "-" : "";
  const unit = STYLE.usd.units.find((u) => v >= u.at_least);
  return `${sign}$${(v / unit.divisor).toFixed(unit.digits)}${unit.suffix}`;
}

export function price(value, step = 1) {
  const digits = step >= 1 ? 0 : Math.min(6, Math.ceil(-Math.log10(step)));
  return value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

const pad = (n) => String(n).padStart(2, "0");

/** 2026-06-22 11:45 UTC */
export function dateTime(ms) {
  const d = new Date(ms);
  return (
    `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`
  );
}

/** Value for <input type="datetime-local"> (shown as UTC). */
export function inputValue(ms) {
  return new Date(ms).toISOString().slice(0, 16);
}

export function isoMinutes(ms) {
  return new Date(ms).toISOString().replace(/:00\.000Z$/, "Z").replace(/\.000Z$/, "Z");
}

/** "3 min", "5 h", "162 d" */
export function age(seconds) {
  if (seconds < 90) return `${Math.max(0, Math.round(seconds))} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 2 * 86400) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} d`;
}

/** Evenly spaced "nice" values (1, 2, 2.5, 5 × 10^k) covering [lo, hi] about `count` times. */
export function niceTicks(lo, hi, count) {
  if (!(hi > lo)) return { step: 1, ticks: [] };
  const raw = (hi - lo) / Math.max(1, count);
  const exp = Math.floor(Math.log10(raw));
  let step = 10 ** exp;
  for (const m of [1, 2, 2.5, 5, 10]) {
    if (m * 10 ** exp >= raw) {
      step = m * 10 ** exp;
      break;
    }
  }
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) ticks.push(v);
  return { step, ticks };
}

const TIME_STEPS = STYLE.time_ticks.steps_s.map((s) => s * 1000);
const TIME_FALLBACK = STYLE.time_ticks.fallback_s * 1000;

/** Time ticks at round UTC steps at least `minPx` apart; labels show the date at midnight. */
export function timeTicks(start, end, widthPx, minPx = STYLE.time_ticks.min_px) {
  const span = end - start;
  const step = TIME_STEPS.find((s) => (s / span) * widthPx >= minPx) || TIME_FALLBACK;
  const ticks = [];
  for (let t = Math.ceil(start / step) * step; t <= end; t += step) {
    const d = new Date(t);
    const midnight = d.getUTCHours() === 0 && d.getUTCMinutes() === 0;
    const label = midnight || step >= DAY
      ? `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}`
      : `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
    ticks.push({ t, label, major: midnight });
  }
  return ticks;
}

export const DURATIONS = { "12h": 12 * HOUR, "24h": DAY, "3d": 3 * DAY, "7d": 7 * DAY, "30d": 30 * DAY };
