// Which (range, interval) heatmaps the API accepts, computed from the limits it publishes (the
// `limits` root field: maxSpanDays, maxHeatmapColumns, maxMatrixCells, the intervals and the
// oldest base-resolution snapshot, fineResolutionFrom). No limit is copied here: the page asks.

import { STYLE } from "./shared.js";

const LABELS = Object.fromEntries(STYLE.intervals.map((i) => [i.id, i.label]));
const DAY_MS = 86_400_000;
const when = (ms) => new Date(ms).toISOString().slice(0, 16).replace("T", " ");

/** The page's name of an interval ("5 min"), or its API name when viewer.json has none. */
export const intervalLabel = (id) => LABELS[id] ?? id;

/** Heatmap columns of [start, end) at `seconds` per column: the API widens the range to whole columns. */
export function columnCount(start, end, seconds) {
  const step = seconds * 1000;
  return Math.ceil(end / step) - Math.floor(start / step);
}

/** A preset's window at one interval: it ends at the last whole column of the newest data. */
export function presetWindow(newest, duration, seconds) {
  const step = seconds * 1000;
  const end = Math.floor(newest / step) * step;
  return [end - duration, end];
}

/**
 * Why the API would refuse a heatmap of [start, end) at `interval` (an entry of
 * limits.intervals), as the end of a sentence about those columns ("they need …"), or null
 * when it accepts it. `rows`: price rows when known.
 */
export function refusal(limits, fineFrom, start, end, interval, rows = null) {
  if (end - start > limits.maxSpanDays * DAY_MS) {
    return `the range is longer than the API's maximum of ${limits.maxSpanDays} days`;
  }
  if (interval.seconds < limits.baseIntervalSeconds) return "they are shorter than the base bar";
  if (interval.needsBaseSnapshots && fineFrom !== null && start < fineFrom) {
    const base = intervalLabel(limits.intervals[0].interval);
    return `they need ${base} snapshots, which are kept from ${when(fineFrom)} UTC on`;
  }
  const columns = columnCount(start, end, interval.seconds);
  if (columns > limits.maxHeatmapColumns) {
    return `that makes ${columns} columns, more than the API's ${limits.maxHeatmapColumns}`;
  }
  if (rows !== null && rows * columns > limits.maxMatrixCells) {
    return `${rows} rows × ${columns} columns exceed the API's ${limits.maxMatrixCells} cells`;
  }
  return null;
}

/**
 * Every interval with the window it would show and why it is refused (null: accepted).
 * `windowAt(seconds)` gives [start, end] for an interval (presets end at its last whole column).
 * The API's own choice for an omitted interval is the finest accepted one whose snapshots are
 * stored (`auto`).
 */
export function options(limits, fineFrom, windowAt, rows = null) {
  const all = limits.intervals.map((interval) => {
    const [start, end] = windowAt(interval.seconds);
    return { ...interval, start, end, reason: refusal(limits, fineFrom, start, end, interval, rows) };
  });
  const auto = all.find((o) => o.reason === null && !(o.needsBaseSnapshots && fineFrom === null)) ?? null;
  return { all, auto };
}

/** The API's message with its interval names (ONE_HOUR) as the page names them (1 h). */
export function readable(message) {
  return message.replace(/\b[A-Z]+(?:_[A-Z]+)+\b/g, (name) => (name in LABELS ? LABELS[name] : name));
}
