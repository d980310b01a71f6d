// What the page shares with `liqmap render`: viewer.json (colours, colour map, scales, legend,
// sides, intervals, axis and USD rules) and the GraphQL documents in graphql/. The server
// inlines both into the page (api/viewer/shared.py), so they arrive with it, without a request.

const element = document.getElementById("liqmap-shared");
const shared = JSON.parse(element.textContent);

/** viewer.json as the server read it. */
export const STYLE = shared.style;

/** The GraphQL documents by name: DOCUMENTS.heatmap is graphql/heatmap.graphql. */
export const DOCUMENTS = shared.documents;

/** A named colour of viewer.json ("long", "accent", …) as CSS hex. */
export const colour = (name) => STYLE.colours[name];
