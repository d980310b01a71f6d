// The page's only way to the data: the public GraphQL API, over HTTP for queries and over
// graphql-transport-ws for the heatmapUpdated subscription.

/** A GraphQL error as the API reports it: message plus extensions.code (NOT_FOUND, …). */
export class ApiError extends Error {
  constructor(message, code = "INTERNAL", extensions = {}) {
    super(message);
    this.code = code;
    this.extensions = extensions;
  }
}

let apiKey = sessionStorage.getItem("liqmap.apiKey") || "";

export function setApiKey(key) {
  apiKey = key || "";
  if (apiKey) sessionStorage.setItem("liqmap.apiKey", apiKey);
  else sessionStorage.removeItem("liqmap.apiKey");
}

/** Headers of every request (with the API key, when the server needs one). */
export function headers() {
  const h = { "Content-Type": "application/json", Accept: "application/json" };
  if (apiKey) h["X-API-Key"] = apiKey;
  return h;
}

/** POST a document: the fetch promise of its response (see `receive`). */
export function request(doc, variables = {}, signal = undefined) {
  return fetch("/graphql", {
    method: "POST",
    headers: headers(),
    body: JSON.stringify({ query: doc, variables }),
    signal,
  });
}

/**
 * A response (or its promise) → `data`, or the first error as an ApiError. With `mark`, the
 * performance mark `<mark>:response` is left when the whole body has arrived.
 */
export async function receive(pending, mark = null) {
  let response;
  try {
    response = await pending;
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(`cannot reach the server (${err.message})`, "NETWORK");
  }
  const text = await response.text();
  if (mark) performance.mark(`${mark}:response`);
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ApiError(`the server answered HTTP ${response.status} without JSON`, "INTERNAL");
  }
  if (body.errors && body.errors.length) {
    const first = body.errors[0];
    const ext = first.extensions || {};
    throw new ApiError(first.message, ext.code || "INTERNAL", ext);
  }
  return body.data;
}

/**
 * POST a document; resolve to `data`, or reject with the first error as an ApiError.
 * With `mark`, performance marks `<mark>:sent` and `<mark>:response` (the whole body received)
 * are left for the caller to measure what follows.
 */
export async function query(doc, variables = {}, { mark = null, signal } = {}) {
  if (mark) performance.mark(`${mark}:sent`);
  return receive(request(doc, variables, signal), mark);
}

/**
 * One graphql-transport-ws connection that keeps itself open (reconnecting with backoff) and
 * re-subscribes whatever is subscribed. `onState(state)` gets "connecting" | "open" | "closed".
 */
export class LiveSocket {
  constructor(onState) {
    this.onState = onState;
    this.subs = new Map(); // id → {query, variables, onNext, onError}
    this.nextId = 1;
    this.ws = null;
    this.acked = false;
    this.retry = 0;
    this.timer = null;
    this.stopped = false;
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const key = apiKey ? `?api_key=${encodeURIComponent(apiKey)}` : "";
    return `${scheme}//${location.host}/graphql${key}`;
  }

  connect() {
    this.stopped = false;
    if (this.ws) return;
    this.onState("connecting");
    const ws = new WebSocket(this.url(), "graphql-transport-ws");
    this.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: "connection_init", payload: {} }));
    ws.binaryType = "arraybuffer"; // frames may arrive as text or binary: both carry JSON
    ws.onmessage = (event) => {
      const text = typeof event.data === "string" ? event.data : new TextDecoder().decode(event.data);
      this.handle(JSON.parse(text));
    };
    ws.onclose = () => {
      this.ws = null;
      this.acked = false;
      this.onState("closed");
      if (!this.stopped) {
        const delay = Math.min(10_000, 500 * 2 ** this.retry++);
        this.timer = setTimeout(() => this.connect(), delay);
      }
    };
  }

  handle(message) {
    switch (message.type) {
      case "connection_ack":
        this.acked = true;
        this.retry = 0;
        this.onState("open");
        for (const [id, sub] of this.subs) this.send(id, sub);
        break;
      case "ping":
        this.ws.send(JSON.stringify({ type: "pong" }));
        break;
      case "next": {
        const sub = this.subs.get(message.id);
        if (!sub) break;
        const { data, errors } = message.payload;
        if (errors && errors.length) sub.onError(toError(errors[0]));
        else sub.onNext(data);
        break;
      }
      case "error": {
        const sub = this.subs.get(message.id);
        this.subs.delete(message.id);
        if (sub) sub.onError(toError((message.payload || [])[0] || { message: "subscription failed" }));
        break;
      }
      case "complete":
        this.subs.delete(message.id);
        break;
      default:
        break;
    }
  }

  send(id, sub) {
    if (!this.ws || !this.acked) return;
    const payload = { query: sub.query, variables: sub.variables };
    this.ws.send(JSON.stringify({ id, type: "subscribe", payload }));
  }

  /** Subscribe; returns an unsubscribe function. */
  subscribe(query, variables, onNext, onError) {
    const id = String(this.nextId++);
    const sub = { query, variables, onNext, onError };
    this.subs.set(id, sub);
    this.send(id, sub);
    this.connect();
    return () => {
      if (this.subs.delete(id) && this.ws && this.acked) {
        this.ws.send(JSON.stringify({ id, type: "complete" }));
      }
    };
  }
}

function toError(err) {
  const ext = err.extensions || {};
  return new ApiError(err.message || "subscription error", ext.code || "INTERNAL", ext);
}

/** base64 of little-endian float32 → Float32Array (the FLOAT32_BASE64 matrix encoding). */
export function decodeMatrix(b64) {
  if (typeof Uint8Array.fromBase64 === "function") {
    const bytes = Uint8Array.fromBase64(b64); // native decoder where the browser has one
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  }
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Float32Array(bytes.buffer);
}
