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

const TICKS = STYLE.time_ticks;

/** Instants (ms) of one step's ticks in [start, end], at round UTC dates and times. */
function tickTimes(start, end, unit, every) {
  const out = [];
  if (unit === "minute" || unit === "hour") {
    const step = every * TICKS.unit_s[unit] * 1000;
    for (let t = Math.ceil(start / step) * step; t <= end; t += step) out.push(t);
    return out;
  }
  if (unit === "day") {
    for (let day = Math.floor(start / DAY) * DAY; day <= end; day += DAY) {
      const dom = new Date(day).getUTCDate();
      if (day >= start && (dom - 1) % every === 0 && (every === 1 || dom <= 29 - every)) out.push(day);
    }
    return out;
  }
  const first = new Date(start);
  let year = first.getUTCFullYear();
  let month = unit === "month" ? first.getUTCMonth() : 0; // 0-based here
  for (;;) {
    const t = Date.UTC(year, month, 1);
    if (t > end) return out;
    const keep = unit === "month" ? month % every === 0 : year % every === 0;
    if (t >= start && keep) out.push(t);
    if (unit === "month") {
      month += 1;
      if (month === 12) {
        month = 0;
        year += 1;
      }
    } else {
      year += 1;
    }
  }
}

/** [label, major, is a date] of a tick. */
function tickLabel(t, unit) {
  const d = new Date(t);
  const midnight = d.getUTCHours() === 0 && d.getUTCMinutes() === 0;
  const newYear = midnight && d.getUTCMonth() === 0 && d.getUTCDate() === 1;
  const year = String(d.getUTCFullYear());
  const date = `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}`;
  if (unit === "minute" || unit === "hour") {
    if (newYear) return [year, true, false];
    return midnight ? [date, true, true] : [`${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`, false, false];
  }
  if (unit === "day") return newYear ? [year, true, false] : [date, d.getUTCDate() === 1, true];
  if (unit === "month") return d.getUTCMonth() === 0 ? [year, true, false] : [MONTHS[d.getUTCMonth()], false, true];
  return [year, true, false];
}

/**
 * The time axis of [start, end] (ms) over `widthPx`, by the rule of viewer.json (as
 * api/viewer/labels.py `time_ticks`): [{t, label, major}]. `roomLeft`/`roomRight`: pixels free
 * beside the plot, where a label may reach.
 */
export function timeTicks(start, end, widthPx, roomLeft = 0, roomRight = 0) {
  const span = end - start;
  if (!(span > 0) || !(widthPx > 0)) return [];
  const [unit, every] =
    TICKS.steps.find(([u, n]) => ((n * TICKS.unit_s[u] * 1000) / span) * widthPx >= TICKS.min_px) ||
    TICKS.steps[TICKS.steps.length - 1];
  const x = (t) => ((t - start) / span) * widthPx;
  const fits = (t, label) => {
    const half = (label.length * TICKS.char_px) / 2;
    return x(t) - half >= -roomLeft && x(t) + half <= widthPx + roomRight;
  };
  const ticks = [];
  for (const t of tickTimes(start, end, unit, every)) {
    const [label, major, isDate] = tickLabel(t, unit);
    if (fits(t, label)) ticks.push([t, label, major, isDate]);
  }
  if (new Date(start).getUTCFullYear() !== new Date(end).getUTCFullYear()) {
    // the range spans two years: the first date label also says which year it is in (a date
    // whose longer label would not fit is left out, so no month is left ambiguous)
    while (ticks.length && ticks[0][3]) {
      const [t, label, major] = ticks[0];
      const dated = `${label} ${new Date(t).getUTCFullYear()}`;
      if (fits(t, dated)) {
        ticks[0] = [t, dated, major, true];
        break;
      }
      ticks.shift();
    }
  }
  const out = [];
  let right = -Infinity;
  for (const [t, label, major] of ticks) { // labels never overlap, whatever their lengths
    const half = (label.length * TICKS.char_px) / 2;
    if (x(t) - half >= right + TICKS.gap_px) {
      out.push({ t, label, major });
      right = x(t) + half;
    }
  }
  return out;
}

/** The range presets (each ends at the newest materialized bar). */
export const DURATIONS = Object.fromEntries(
  Object.entries(STYLE.ranges).filter(([name]) => !name.startsWith("$")).map(([name, s]) => [name, s * 1000]),
);
