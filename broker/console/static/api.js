// The console's one way to the broker: the NGSI-LD API with the user's credentials (records 0400, 0402). Nothing
// is shown that the API did not answer to this user, so the console shows only what the user may see.

export const API = "/ngsi-ld/v1";
const AUTH_KEY = "agora.console.auth";
const PKCE_KEY = "agora.console.pkce";

// -- credentials -------------------------------------------------------------------------------------------------
export function credentials() {
  const raw = sessionStorage.getItem(AUTH_KEY);
  return raw ? JSON.parse(raw) : null;
}

export function useApiKey(key) {
  if (key) sessionStorage.setItem(AUTH_KEY, JSON.stringify({ kind: "key", value: key }));
  else sessionStorage.removeItem(AUTH_KEY);
}

function authHeaders() {
  const c = credentials();
  if (!c) return {};
  return c.kind === "key" ? { "X-Api-Key": c.value } : { Authorization: `Bearer ${c.value}` };
}

function contextHeaders() {
  return contextUrl
    ? { Link: `<${contextUrl}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"` } : {};
}

// -- the project @context (record 0403): the API is asked in its terms through the copy the broker hosts (the one
// `agora import` posts), so that q, attrs and types read as the user writes them. Without a hosted copy the API is
// asked in full IRIs, and its answers are shortened here with the same document -----------------------------------
let terms = new Map(); // term -> IRI
let iris = new Map(); // IRI -> term
let contextUrl = null;
const MAX_HOSTED_CHECKED = 20;

// JSON with its object members in one order, so that two equal documents give one string.
const canonical = (v) => (Array.isArray(v) ? `[${v.map(canonical).join(",")}]`
  : v && typeof v === "object" ? `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
    .join(",")}}` : JSON.stringify(v));

async function hostedCopy(doc) {
  const listing = await fetch(`${API}/jsonldContexts?kind=Hosted`, { headers: authHeaders() });
  if (!listing.ok) return null;
  const wanted = canonical(doc);
  for (const url of (await listing.json()).slice(0, MAX_HOSTED_CHECKED)) {
    const served = await fetch(url);
    if (served.ok && canonical(await served.json()) === wanted) return url;
  }
  return null;
}

export const hostedContext = () => contextUrl;

export async function loadContext() {
  const response = await fetch("/catalog/context.jsonld");
  if (!response.ok) return;
  const doc = await response.json();
  contextUrl = await hostedCopy(doc);
  const ctx = Array.isArray(doc["@context"]) ? Object.assign({}, ...doc["@context"]) : doc["@context"];
  for (const [term, def] of Object.entries(ctx || {})) {
    const iri = typeof def === "string" ? def : def && def["@id"];
    if (typeof iri === "string" && !term.startsWith("@")) {
      terms.set(term, iri);
      if (!iris.has(iri)) iris.set(iri, term);
    }
  }
}

export const expand = (term) => (contextUrl ? term : terms.get(term) || term);
export const compact = (iri) => iris.get(iri) || iri;

// -- requests ----------------------------------------------------------------------------------------------------
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export async function call(path, { params = {}, accept = "application/json", method = "GET", body, signal } = {}) {
  const url = new URL(path.startsWith("/") ? path : `${API}/${path}`, location.origin);
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") url.searchParams.set(k, v);
  const headers = { Accept: accept, ...authHeaders(), ...contextHeaders() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, { method, headers, body: body && JSON.stringify(body), signal });
  if (!response.ok) {
    let problem = {};
    try { problem = await response.json(); } catch { /* not problem+json */ }
    throw new ApiError(response.status, problem);
  }
  return response;
}

export async function json(path, options) {
  return (await call(path, options)).json();
}

// Every page of a query (Link rel="next", clause 6.3.10), at most `max` items.
export async function* pages(path, options, max = 20000) {
  let next = path, params = options.params, seen = 0;
  while (next && seen < max) {
    const response = await call(next, { ...options, params });
    const body = await response.json();
    const items = Array.isArray(body) ? body : body.features || [];
    seen += items.length;
    yield items;
    const link = (response.headers.get("Link") || "").match(/<([^>]+)>;\s*rel="next"/);
    next = link ? link[1] : null;
    params = {};
  }
}

// -- the change feed as server-sent events, read with fetch so that it carries the credentials; each event with its
// sequence number, from which a new stream resumes (`after=`) -------------------------------------------------------
export async function follow(params, onEvent, signal) {
  const response = await call("agora/changes/stream", { params, accept: "text/event-stream", signal });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const lines = block.split("\n");
      const data = lines.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      const seq = lines.find((l) => l.startsWith("id: "))?.slice(4);
      if (data) onEvent(JSON.parse(data), seq);
      else if (seq !== undefined) onEvent(null, seq); // where the stream starts (record 0407)
    }
  }
}

// -- OpenID Connect: authorization code with PKCE (RFC 7636), the console a public client (record 0402) ----------
const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
  .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

async function discovery(issuer) {
  const response = await fetch(`${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`);
  if (!response.ok) throw new Error(`the issuer ${issuer} publishes no discovery document`);
  return response.json();
}

export async function signIn(issuer) {
  const meta = await discovery(issuer.issuer);
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const state = b64url(crypto.getRandomValues(new Uint8Array(16)));
  sessionStorage.setItem(PKCE_KEY, JSON.stringify({ verifier, state, issuer }));
  const url = new URL(meta.authorization_endpoint);
  const redirect = `${location.origin}/console`;
  Object.entries({
    response_type: "code", client_id: issuer.clientId, redirect_uri: redirect, scope: "openid",
    code_challenge: challenge, code_challenge_method: "S256", state,
  }).forEach(([k, v]) => url.searchParams.set(k, v));
  location.assign(url);
}

// The second leg, when the issuer sent the browser back with ?code=&state=.
export async function finishSignIn() {
  const query = new URLSearchParams(location.search);
  const pending = JSON.parse(sessionStorage.getItem(PKCE_KEY) || "null");
  if (!query.has("code") || !pending) return false;
  sessionStorage.removeItem(PKCE_KEY);
  history.replaceState(null, "", location.pathname);
  if (query.get("state") !== pending.state) throw new Error("the sign-in answer does not match its request");
  const meta = await discovery(pending.issuer.issuer);
  const response = await fetch(meta.token_endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code", code: query.get("code"), redirect_uri: `${location.origin}/console`,
      client_id: pending.issuer.clientId, code_verifier: pending.verifier,
    }),
  });
  if (!response.ok) throw new Error(`the issuer refused the sign-in (${response.status})`);
  const token = await response.json();
  sessionStorage.setItem(AUTH_KEY, JSON.stringify({ kind: "bearer", value: token.access_token }));
  return true;
}
