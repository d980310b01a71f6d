// The page's first requests, sent as soon as this small module has loaded (index.html loads it
// async, ahead of main.js and the rest): the limits and the newest map of the symbol shown come
// embedded in the page when the server could answer them (the liqmap-first element), else they
// are asked for here; for the default kind of view (a preset range at auto resolution over the
// whole price axis) the heatmap request then leaves at once, instead of after every module has
// loaded — or has already left: the server names it in the page, which preloads it. main.js
// takes these answers (`early`) when its own view asks the same, else asks again.

import { DURATIONS } from "./format.js";
import { request } from "./graphql.js";
import { options, presetWindow } from "./limits.js";
import { DOCUMENTS, STYLE } from "./shared.js";
import { fromUrl, heatmapVariables } from "./state.js";

const embedded = JSON.parse(document.getElementById("liqmap-first")?.textContent ?? "null");
const answered = (text) =>
  Promise.resolve(new Response(text, { status: 200, headers: { "Content-Type": "application/json" } }));

const state = fromUrl(location.search);
const latestVariables = { symbol: state.symbol || STYLE.defaults.symbol, exchanges: state.exchanges.length ? state.exchanges : null };
const sameView = embedded?.latest && JSON.stringify(embedded.variables) === JSON.stringify(latestVariables);

/**
 * `limits` and `latest.response`: promises of the responses (for graphql.js `receive`);
 * `heatmap`: {variables, response, sentAt} when the first heatmap request has left, else null;
 * `taken`: main.js has sent its first heatmap request (none leaves from here after that).
 */
export const early = {
  taken: false,
  limits: embedded?.limits ? answered(embedded.limits) : request(DOCUMENTS.limits),
  latest: { variables: latestVariables, response: sameView ? answered(embedded.latest) : request(DOCUMENTS.latest, latestVariables) },
  heatmap: null,
};
for (const r of [early.limits, early.latest.response]) r.catch(() => {});

/** The heatmap main.js would ask for first, when it needs nothing but the two answers. */
function sendHeatmap(limitsAnswer, latestAnswer) {
  const ld = limitsAnswer?.data;
  const data = latestAnswer?.data;
  if (!ld?.limits || !data?.liquidationMap || early.taken) return;
  const newest = Date.parse(data.liquidationMap.at);
  const fineFrom = data.limits.fineResolutionFrom ? Date.parse(data.limits.fineResolutionFrom) : null;
  const duration = DURATIONS[state.range] ?? DURATIONS["24h"];
  const { auto } = options(ld.limits, fineFrom, (seconds) => presetWindow(newest, duration, seconds));
  if (!auto) return;
  const variables = heatmapVariables(state, {
    symbol: latestVariables.symbol,
    exchanges: latestVariables.exchanges,
    start: auto.start,
    end: auto.end,
    interval: null,
  });
  const sentAt = performance.now();
  const response = request(DOCUMENTS.heatmap, variables);
  response.catch(() => {});
  early.heatmap = { variables, response, sentAt };
}

/**
 * The heatmap the server says this page asks for first ({variables, url}: the same variables
 * sendHeatmap would build, as a GET address the page's <link rel="preload"> has already
 * requested): fetched with the preload's mode and credentials, so the browser answers it from
 * that request instead of sending another.
 */
function fetchPreloaded({ variables, url }) {
  if (early.taken) return;
  const sentAt = performance.now();
  const response = fetch(url, { mode: "cors", credentials: "same-origin" });
  response.catch(() => {});
  early.heatmap = { variables, response, sentAt };
}

const preset = state.range !== "custom" && state.res === "auto" && state.pmin === null && state.pmax === null;
if (preset && embedded?.limits && sameView && embedded.heatmap) {
  fetchPreloaded(embedded.heatmap);
} else if (preset && embedded?.limits && sameView) {
  // both answers are in the page: the request leaves now, before main.js has even started
  sendHeatmap(JSON.parse(embedded.limits), JSON.parse(embedded.latest));
} else if (preset) {
  const json = (pending) => pending.then((r) => (r.ok ? r.clone().json() : null));
  Promise.all([json(early.limits), json(early.latest.response)])
    .then(([l, m]) => sendHeatmap(l, m))
    .catch(() => {});
}
