// The heatmap's colours: the colour map, scales and legend of viewer.json (shared.js). The PNG
// render reads the same file (api/viewer/colormap.py), so the pictures match.

import { STYLE } from "./shared.js";
import { usd } from "./format.js";

/** 256 × [r, g, b] (0–255). */
export const LUT = STYLE.colormap.colours.map((hex) => [
  parseInt(hex.slice(1, 3), 16),
  parseInt(hex.slice(3, 5), 16),
  parseInt(hex.slice(5, 7), 16),
]);

/** The same table packed as little-endian RGBA words (for writing ImageData through a Uint32Array). */
export const LUT32 = new Uint32Array(LUT.map(([r, g, b]) => (255 << 24) | (b << 16) | (g << 8) | r));

/** CSS colour of index i. */
export const css = (i) => {
  const [r, g, b] = LUT[Math.max(0, Math.min(LUT.length - 1, i))];
  return `rgb(${r},${g},${b})`;
};

function power(e) {
  // sqrt and identity spelled out: exact, fast in the paint loop, and as numpy computes them
  if (e === 0.5) return { forward: (x) => Math.sqrt(Math.max(0, x)), inverse: (t) => Math.max(0, t) * Math.max(0, t) };
  if (e === 1) return { forward: (x) => Math.max(0, x), inverse: (t) => Math.max(0, t) };
  return { forward: (x) => Math.pow(Math.max(0, x), e), inverse: (t) => Math.pow(Math.max(0, t), 1 / e) };
}

function logarithmic(decades) {
  return {
    forward: (x) => (x > 0 ? Math.max(0, 1 + Math.log10(x) / decades) : 0),
    inverse: (t) => (t > 0 ? Math.pow(10, decades * (t - 1)) : 0),
  };
}

/** Scales: value / max → position t (0–1) on the colour bar, and back (for legend ticks). */
export const SCALES = Object.fromEntries(
  Object.entries(STYLE.scales).map(([name, spec]) => [
    name,
    { ...(spec.kind === "log" ? logarithmic(spec.decades) : power(spec.exponent)), label: spec.label },
  ]),
);

const FILLED_FROM = STYLE.colormap.filled_from;
const TOP = LUT.length - 1;
const SPREAD = LUT.length - 0.001;

/** Colour index of a value, given 1 / (largest value) and the scale's forward function. */
export function colourIndex(v, inv, forward) {
  return v > 0 ? Math.min(TOP, Math.max(FILLED_FROM, Math.floor(forward(v * inv) * SPREAD))) : 0;
}

/** Legend ticks: [{t, label}] for the largest value and scale ("–" while there is nothing). */
export function legendTicks(max, scale) {
  const inverse = SCALES[scale].inverse;
  return STYLE.legend.ticks.map((t) => ({ t, label: max > 0 || t === 0 ? usd(max * inverse(t)) : "–" }));
}

/** "USD at risk per cell (long + short, square-root scale)" */
export function legendCaption(side, scale) {
  return STYLE.legend.caption
    .replace("{side}", STYLE.sides[side].legend)
    .replace("{scale}", SCALES[scale].label);
}
