// The Agora console (issue 21): map, entity browser, history, live feed and operations over the NGSI-LD API.
import * as maplibregl from "/console/static/vendor/maplibre-gl/maplibre-gl.mjs";
import * as api from "/console/static/api.js";

const $ = (id) => document.getElementById(id);
const MAX_FEATURES = 20000; // per type and view: beyond it the layer says it is cut (record 0403)

// What the end-to-end tests and a curious user can read from the page.
const agora = { map: null, layers: {}, chartPoints: 0, feed: [], ready: false };
window.agora = agora;
// Each network's colour, on the map and in the relationship graph (read by the end-to-end test).
agora.colourOf = (network) => colourOf(network);

// -- small DOM helpers (text only: nothing from the API is ever parsed as HTML) ----------------------------------
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "onclick") node.addEventListener("click", v);
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function showError(error) {
  const box = $("error");
  box.textContent = error ? `${error.message}${error.status ? ` (HTTP ${error.status})` : ""}` : "";
  box.hidden = !error;
}

async function guarded(work) {
  try {
    showError(null);
    return await work();
  } catch (error) {
    if (error.name !== "AbortError") showError(error);
    return undefined;
  }
}

// -- views -------------------------------------------------------------------------------------------------------
function showView(name) {
  for (const tab of document.querySelectorAll(".tab")) tab.setAttribute("aria-pressed", tab.dataset.view === name);
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== `view-${name}`;
  if (name === "map" && agora.map) agora.map.resize();
  if (name === "operations") guarded(loadOperations);
}

// -- networks and colours: a network is the third part of an Agora id, urn:ngsi-ld:<Type>:<network>:<id> --------
const PALETTE = ["#0b5cad", "#b8330f", "#167a3e", "#7a2c9e", "#a36a00", "#00707a", "#9e1f63", "#4d5b00"];
const colours = new Map();
function colourOf(key) {
  if (!colours.has(key)) colours.set(key, PALETTE[colours.size % PALETTE.length]);
  return colours.get(key);
}
const networkOf = (id) => (id.split(":").length > 4 ? id.split(":")[3] : "");

// -- the map -----------------------------------------------------------------------------------------------------
function basemapStyle() {
  return {
    version: 8,
    sources: { land: { type: "geojson", data: "/console/static/vendor/world-atlas/land-110m.geojson" } },
    layers: [
      { id: "water", type: "background", paint: { "background-color": "#cfe3f3" } },
      { id: "land", type: "fill", source: "land", paint: { "fill-color": "#f3f1ea", "fill-outline-color": "#9aa" } },
    ],
  };
}

function bboxPolygon(map) {
  const b = map.getBounds();
  const w = Math.max(-180, b.getWest()), e = Math.min(180, b.getEast());
  const s = Math.max(-90, b.getSouth()), n = Math.min(90, b.getNorth());
  return JSON.stringify([[[w, s], [e, s], [e, n], [w, n], [w, s]]]);
}

// Every entity type, and whether any of its entities has a location: the map asks only those (record 0403), not
// one geo-query per type on every move for types that never have one (a grid's terminals, a feed's stop times).
async function entityTypes() {
  const details = await api.json("types", { params: { details: "true" } });
  return details.map((t) => ({ name: t.typeName, located: (t.attributeNames || []).includes("location") }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function addLayers(map, type, index) {
  const pts = `t${index}:points`, shapes = `t${index}:shapes`, colour = colourOf(type);
  map.addSource(pts, { type: "geojson", data: empty(), cluster: true, clusterRadius: 40, clusterMaxZoom: 13 });
  map.addSource(shapes, { type: "geojson", data: empty() });
  map.addLayer({ id: `${shapes}:line`, type: "line", source: shapes, filter: ["!=", ["geometry-type"], "Polygon"],
    paint: { "line-color": ["get", "_colour"], "line-width": 2 } });
  map.addLayer({ id: `${shapes}:fill`, type: "fill", source: shapes, filter: ["==", ["geometry-type"], "Polygon"],
    paint: { "fill-color": ["get", "_colour"], "fill-opacity": 0.3 } });
  map.addLayer({ id: `${pts}:clusters`, type: "circle", source: pts, filter: ["has", "point_count"],
    paint: { "circle-color": colour, "circle-opacity": 0.6,
      "circle-radius": ["step", ["get", "point_count"], 10, 10, 14, 100, 18, 1000, 24] } });
  map.addLayer({ id: `${pts}:points`, type: "circle", source: pts, filter: ["!", ["has", "point_count"]],
    paint: { "circle-color": ["get", "_colour"], "circle-radius": 5, "circle-stroke-width": 1,
      "circle-stroke-color": "#fff" } });
  for (const layer of [`${pts}:points`, `${shapes}:line`, `${shapes}:fill`]) {
    map.on("click", layer, (e) => openEntity(e.features[0].properties._id));
    map.on("mouseenter", layer, () => { map.getCanvas().style.cursor = "pointer"; });
    map.on("mouseleave", layer, () => { map.getCanvas().style.cursor = ""; });
  }
  map.on("click", `${pts}:clusters`, (e) => map.easeTo({ center: e.lngLat, zoom: map.getZoom() + 2 }));
  agora.layers[type] = { points: pts, shapes, count: 0, cut: false, colour };
}

const empty = () => ({ type: "FeatureCollection", features: [] });

async function fetchType(map, type, polygon, signal) {
  const points = [], shapes = [];
  let cut = false;
  const params = { type, georel: "within", geometry: "Polygon", coordinates: polygon, options: "keyValues",
    limit: 1000 };
  for await (const page of api.pages("entities", { params, accept: "application/geo+json", signal }, MAX_FEATURES)) {
    for (const f of page) {
      if (!f.geometry) continue;
      f.properties = { _id: f.id, _type: api.compact(type), _colour: colourOf(networkOf(f.id) || type) };
      (f.geometry.type === "Point" ? points : shapes).push(f);
    }
    cut = points.length + shapes.length >= MAX_FEATURES;
  }
  return { points, shapes, cut };
}

let inflight = null;
async function refreshMap(map) {
  inflight?.abort();
  const controller = (inflight = new AbortController());
  const polygon = bboxPolygon(map);
  $("map-status").textContent = "Loading…";
  const results = await Promise.all(Object.keys(agora.layers).map(async (type) => {
    const got = await fetchType(map, type, polygon, controller.signal);
    return [type, got];
  }));
  if (controller.signal.aborted) return;
  agora.viewBox = polygon; // the area of a live feed that follows the map's view
  let total = 0;
  agora.lastFeatures = results.flatMap(([, got]) => [...got.points, ...got.shapes]);
  for (const [type, got] of results) {
    const layer = agora.layers[type];
    map.getSource(layer.points).setData({ type: "FeatureCollection", features: got.points });
    map.getSource(layer.shapes).setData({ type: "FeatureCollection", features: got.shapes });
    layer.count = got.points.length + got.shapes.length;
    layer.cut = got.cut;
    total += layer.count;
  }
  renderLegend();
  $("map-status").textContent = `${total} entities in view`;
  agora.ready = true;
}

function renderLegend() {
  $("layers").replaceChildren(...Object.entries(agora.layers).filter(([, l]) => l.count > 0).map(([type, l]) =>
    el("li", { "data-type": api.compact(type) }, el("span", { class: "swatch", "aria-hidden": "true" }),
      el("span", { text: `${api.compact(type)}: ${l.count}${l.cut ? " (cut)" : ""}` }))));
  for (const [i, sw] of [...document.querySelectorAll("#layers .swatch")].entries()) {
    sw.style.background = Object.values(agora.layers).filter((l) => l.count > 0)[i].colour;
  }
}

// The features of each layer as the map's sources hold them (read by the end-to-end test).
agora.sourceCounts = async () => {
  const out = {};
  for (const [type, l] of Object.entries(agora.layers)) {
    const pts = await agora.map.getSource(l.points).getData();
    const shapes = await agora.map.getSource(l.shapes).getData();
    const n = pts.features.length + shapes.features.length;
    if (n) out[api.compact(type)] = n;
  }
  return out;
};

async function startMap(types) {
  const map = new maplibregl.Map({ container: "map", style: basemapStyle(), center: [0, 20], zoom: 1,
    attributionControl: { compact: true, customAttribution: "Natural Earth (public domain)" } });
  agora.map = map;
  map.addControl(new maplibregl.NavigationControl(), "top-left");
  await new Promise((resolve) => map.on("load", resolve));
  types.forEach((t, i) => addLayers(map, t, i));
  addDrawing(map);
  await guarded(() => refreshMap(map));
  fitToData(map);
  let timer;
  map.on("moveend", () => {
    clearTimeout(timer);
    // a hidden map (another tab) has no view of its own: it is asked again when it shows (showView resizes it)
    if (!map.getContainer().offsetWidth) return;
    timer = setTimeout(async () => {
      await guarded(() => refreshMap(map));
      if (agora.feedArea && $("l-area").value === "view") startFeed();
    }, 250);
  });
}

function fitToData(map) {
  const bounds = new maplibregl.LngLatBounds();
  for (const f of agora.lastFeatures || []) walk(f.geometry.coordinates, (c) => bounds.extend(c));
  if (!bounds.isEmpty()) map.fitBounds(bounds, { padding: 40, animate: false, maxZoom: 14 });
}

function walk(coords, visit) {
  if (typeof coords[0] === "number") visit(coords);
  else for (const c of coords) walk(c, visit);
}

// -- a drawn area (record 0407): a box dragged on the map, or the view taken as one, for the live feed ----------
function ringOf(a, b) {
  const w = Math.max(-180, Math.min(a.lng, b.lng)), e = Math.min(180, Math.max(a.lng, b.lng));
  const s = Math.max(-90, Math.min(a.lat, b.lat)), n = Math.min(90, Math.max(a.lat, b.lat));
  return [[w, s], [e, s], [e, n], [w, n], [w, s]];
}

function showDrawn(map, ring) {
  agora.drawnArea = ring;
  const features = ring ? [{ type: "Feature", properties: {}, geometry: { type: "Polygon", coordinates: [ring] } }]
    : [];
  map.getSource("drawn").setData({ type: "FeatureCollection", features });
  $("draw-status").textContent = ring ? `Area: ${boxText(ring)}` : "No area drawn";
  $("draw-clear").disabled = !ring;
}

function addDrawing(map) {
  map.addSource("drawn", { type: "geojson", data: empty() });
  map.addLayer({ id: "drawn:fill", type: "fill", source: "drawn", paint: { "fill-color": "#1b1f24",
    "fill-opacity": 0.08 } });
  map.addLayer({ id: "drawn:line", type: "line", source: "drawn", paint: { "line-color": "#1b1f24",
    "line-width": 2, "line-dasharray": [2, 1] } });
  let start = null;
  const button = $("draw");
  const stop = () => { button.setAttribute("aria-pressed", "false"); map.dragPan.enable();
    map.getCanvas().style.cursor = ""; };
  button.addEventListener("click", () => {
    const on = button.getAttribute("aria-pressed") !== "true";
    if (!on) { stop(); return; }
    button.setAttribute("aria-pressed", "true");
    map.dragPan.disable(); // the drag draws instead of moving the map
    map.getCanvas().style.cursor = "crosshair";
  });
  map.on("mousedown", (e) => { if (button.getAttribute("aria-pressed") === "true") start = e.lngLat; });
  map.on("mousemove", (e) => { if (start) showDrawn(map, ringOf(start, e.lngLat)); });
  map.on("mouseup", (e) => {
    if (!start) return;
    showDrawn(map, ringOf(start, e.lngLat));
    start = null;
    stop();
    if (feed && $("l-area").value === "drawn") startFeed();
  });
  $("draw-view").addEventListener("click", () => { // the keyboard's way to an area
    showDrawn(map, JSON.parse(bboxPolygon(map))[0]);
    if (feed && $("l-area").value === "drawn") startFeed();
  });
  $("draw-clear").addEventListener("click", () => showDrawn(map, null));
  showDrawn(map, null);
}

// -- entity browser ----------------------------------------------------------------------------------------------
const UNITS = { CEL: "°C", KEL: "K", MTR: "m", KMT: "km", MMT: "mm", MTQ: "m³", MQH: "m³/h", MQS: "m³/s",
  LTR: "l", L2: "l/s", KMH: "km/h", MTS: "m/s", KWT: "kW", MAW: "MW", WTT: "W", KWH: "kWh", VLT: "V", KVT: "kV",
  AMP: "A", HTZ: "Hz", P1: "%", BAR: "bar", KPA: "kPa", A97: "hPa", SEC: "s", MIN: "min", HUR: "h" };

async function search(event) {
  event.preventDefault();
  await guarded(async () => {
    const params = { limit: 100, count: "true" };
    const type = $("s-type").value;
    if (type) params.type = type;
    const id = $("s-id").value.trim();
    if (id) params[/[*.\[\]]/.test(id) ? "idPattern" : "id"] = id;
    if ($("s-q").value.trim()) params.q = $("s-q").value.trim(); // in the terms of the hosted project @context
    if ($("s-georel").value.trim()) {
      Object.assign(params, { georel: $("s-georel").value.trim(), geometry: $("s-geometry").value,
        coordinates: $("s-coords").value.trim() });
    }
    if (!params.type && !params.id && !params.idPattern && !params.q && !params.georel) params.type = "*";
    const response = await api.call("entities", { params });
    const found = await response.json();
    $("s-count").textContent = `${response.headers.get("NGSILD-Results-Count") ?? found.length} found`;
    $("results").replaceChildren(...found.map((e) => el("li", {},
      el("button", { type: "button", onclick: () => openEntity(e.id), text: e.id }),
      el("span", { class: "muted", text: ` ${[].concat(e.type).map(api.compact).join(", ")}` }))));
  });
}


async function openEntity(id) {
  showView("entities");
  await guarded(async () => {
    const entity = await api.json(`entities/${encodeURIComponent(id)}`, { params: { options: "sysAttrs" } });
    renderEntity(entity);
    await drawGraph(entity);
  });
}

function renderEntity(entity) {
  const rows = [];
  for (const [name, value] of Object.entries(entity)) {
    if (["id", "type", "@context", "createdAt", "modifiedAt", "scope"].includes(name)) continue;
    for (const inst of [].concat(value)) rows.push(attributeRow(name, inst));
  }
  const types = [].concat(entity.type).map(api.compact).join(", ");
  $("entity").replaceChildren(...[
    el("h3", { text: entity.id }),
    el("p", { class: "muted", text: `${types} · modified ${entity.modifiedAt || "?"}` }),
    el("table", {}, el("thead", {}, el("tr", {}, ...["Attribute", "Value", "Unit", "Observed", "Dataset"]
      .map((h) => el("th", { scope: "col", text: h })))), el("tbody", {}, ...rows)),
    historyLinks(entity),
    el("section", { class: "graph", "aria-labelledby": "graph-title" }, el("h4", { id: "graph-title",
      text: "Relationships" }), el("p", { id: "graph-status", role: "status", text: "Loading…" }),
      el("div", { id: "graph" }), el("ul", { id: "graph-networks", "aria-label": "Networks" }))]
    .filter((c) => c !== null)); // replaceChildren would write a null as the text "null"
}

function attributeRow(name, inst) {
  const unit = inst.unitCode ? `${UNITS[inst.unitCode] || ""} (${inst.unitCode})`.trim() : "";
  return el("tr", {}, el("th", { scope: "row", text: api.compact(name) }), el("td", {}, valueOf(inst)),
    el("td", { text: unit }), el("td", { text: inst.observedAt || "" }), el("td", { text: inst.datasetId || "" }));
}

function valueOf(inst) {
  if (inst.type === "Relationship" || inst.type === "ListRelationship") {
    const targets = [].concat(inst.object ?? inst.objectList ?? []).map((o) => (typeof o === "object" ? o.object : o));
    return el("span", {}, ...targets.map((t) => el("button", { type: "button", class: "link",
      onclick: () => openEntity(t), text: t })));
  }
  if (inst.type === "LanguageProperty") {
    return el("dl", {}, ...Object.entries(inst.languageMap || {}).flatMap(([lang, text]) =>
      [el("dt", { text: lang }), el("dd", { text: [].concat(text).join(", ") })]));
  }
  const v = inst.type === "VocabProperty" ? inst.vocab : inst.value;
  return document.createTextNode(typeof v === "object" ? JSON.stringify(v) : String(v));
}

function historyLinks(entity) {
  const numeric = Object.entries(entity).filter(([, v]) => [].concat(v).some((i) => typeof i?.value === "number"));
  if (!numeric.length) return null;
  return el("p", {}, "History: ", ...numeric.map(([name]) => el("button", { type: "button", class: "link",
    onclick: () => { $("h-id").value = entity.id; $("h-attr").value = api.compact(name); showView("history");
      drawHistory(); }, text: `${api.compact(name)} ` })));
}

// -- the relationship graph (record 0408): the entity, what it points at and what points at it -------------------
const SVG = "http://www.w3.org/2000/svg";
const GRAPH_WIDTH = 760, ROW = 26, PER_NAME = 8, INCOMING_LIMIT = 100, Q_CHUNK = 3000, NAMES_TTL_MS = 30000;
const typeOf = (id) => (id.split(":").length > 3 ? id.split(":")[2] : "");
const shortId = (id) => id.replace(/^urn:ngsi-ld:/, "");
const clip = (t, n) => (t.length > n ? `${t.slice(0, n - 1)}…` : t);

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

// Outgoing edges: every instance (any datasetId) of every Relationship and ListRelationship.
function outgoingEdges(entity) {
  const edges = [];
  for (const [name, value] of Object.entries(entity)) {
    for (const inst of [].concat(value)) {
      if (inst?.type !== "Relationship" && inst?.type !== "ListRelationship") continue;
      for (const o of [].concat(inst.object ?? inst.objectList ?? [])) {
        const target = typeof o === "object" ? o.object : o;
        if (typeof target === "string") edges.push({ id: target, name: api.compact(name) });
      }
    }
  }
  return edges;
}

// The broker's relationship names (GET /attributes?details=true), kept a little: each opened entity needs them.
let relationNames = { at: 0, names: [] };
async function relationshipNames() {
  if (Date.now() - relationNames.at < NAMES_TTL_MS) return relationNames.names;
  const attrs = await api.json("attributes", { params: { details: "true" } });
  const names = attrs.filter((a) => (a.attributeTypes || []).some((t) => t.endsWith("Relationship")))
    .map((a) => a.attributeName);
  relationNames = { at: Date.now(), names };
  return names;
}

// Incoming edges: the entities whose relationship of any name has `id` as its object, asked as one q per chunk of
// names (q=a=="id"|b=="id"), the answers picked to the names (clauses 4.9, 4.21).
async function incomingEdges(id) {
  const names = await relationshipNames(), chunks = [[]];
  for (const n of names) {
    const q = [...chunks.at(-1), n].map((m) => `${m}==${JSON.stringify(id)}`).join("|");
    if (q.length > Q_CHUNK && chunks.at(-1).length) chunks.push([n]); else chunks.at(-1).push(n);
  }
  const edges = [];
  let total = 0, received = 0;
  for (const chunk of chunks.filter((c) => c.length)) {
    const response = await api.call("entities", { params: { q: chunk.map((n) => `${n}==${JSON.stringify(id)}`)
      .join("|"), pick: ["id", "type", ...chunk].join(","), limit: INCOMING_LIMIT, count: "true" } });
    total += Number(response.headers.get("NGSILD-Results-Count") || 0);
    const found = await response.json();
    received += found.length;
    for (const e of found) {
      for (const edge of outgoingEdges(e)) if (edge.id === id) edges.push({ id: e.id, name: edge.name });
    }
  }
  return { edges, total, received };
}

// At most PER_NAME nodes per relationship name on a side, then one "+n more" row for that name.
function rows(edges) {
  const byName = new Map();
  for (const e of edges) byName.set(e.name, [...(byName.get(e.name) || []), e]);
  return [...byName.entries()].flatMap(([name, list]) => [...list.slice(0, PER_NAME),
    ...(list.length > PER_NAME ? [{ more: list.length - PER_NAME, name }] : [])]);
}

function graphNode(id, x, y, anchor) {
  const network = networkOf(id) || typeOf(id);
  const label = svg("text", { x: anchor === "end" ? x - 10 : x + 10, y: y + 4, "text-anchor": anchor },
    clip(shortId(id), 34));
  const node = svg("g", { class: "node", role: "button", tabindex: "0", "data-id": id, "data-network": network,
    "aria-label": `Open ${id}` }, svg("title", {}, id), svg("circle", { cx: x, cy: y, r: 7, fill: colourOf(network) }),
    label);
  node.addEventListener("click", () => openEntity(id));
  node.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); openEntity(id); }
  });
  return node;
}

function side(list, x, centre, anchor, direction) {
  const top = centre.y - ((list.length - 1) * ROW) / 2;
  return list.flatMap((row, i) => {
    const y = top + i * ROW;
    if (row.more) {
      return [svg("text", { x: anchor === "end" ? x + 8 : x - 8, y: y + 4, "text-anchor": anchor, class: "more" },
        `+${row.more} more by ${row.name}`)];
    }
    const mid = { x: x + (centre.x - x) * 0.35, y: y + (centre.y - y) * 0.35 }; // near its node: names apart
    return [svg("line", { x1: x, y1: y, x2: centre.x, y2: centre.y, class: "edge", "data-direction": direction }),
      svg("text", { x: mid.x, y: mid.y - 3, "text-anchor": "middle", class: "edge-name" }, row.name),
      graphNode(row.id, x, y, anchor)];
  });
}

let graphTicket = 0; // an entity opened while the graph of the one before is asked for wins
async function drawGraph(entity) {
  const ticket = ++graphTicket;
  const out = outgoingEdges(entity);
  let inc = [], total = 0, received = 0, refused = "";
  try {
    ({ edges: inc, total, received } = await incomingEdges(entity.id));
  } catch (error) { // the entity and what it points at still show; why the incoming edges do not is said
    if (error.name === "AbortError") throw error;
    refused = `; incoming not shown: ${error.message}${error.status ? ` (HTTP ${error.status})` : ""}`;
  }
  if (ticket !== graphTicket) return;
  const left = rows(inc), right = rows(out);
  const height = Math.max(left.length, right.length, 1) * ROW + 40;
  const centre = { x: GRAPH_WIDTH / 2, y: height / 2 };
  const drawing = svg("svg", { viewBox: `0 0 ${GRAPH_WIDTH} ${height}`, width: GRAPH_WIDTH, height, role: "group",
    "aria-label": `Relationships of ${entity.id}: ${inc.length} incoming, ${out.length} outgoing` },
  ...side(left, 230, centre, "end", "in"), ...side(right, GRAPH_WIDTH - 230, centre, "start", "out"),
  svg("circle", { cx: centre.x, cy: centre.y, r: 10, fill: colourOf(networkOf(entity.id) || typeOf(entity.id)),
    class: "centre" }),
  svg("text", { x: centre.x, y: centre.y - 16, "text-anchor": "middle", class: "centre-name" },
    clip(shortId(entity.id), 40)));
  $("graph").replaceChildren(drawing);
  const networks = [...new Set([entity.id, ...out.map((e) => e.id), ...inc.map((e) => e.id)]
    .map((id) => networkOf(id) || typeOf(id)))];
  $("graph-networks").replaceChildren(...networks.map((n) => el("li", { "data-network": n },
    el("span", { class: "swatch", "aria-hidden": "true" }), el("span", { text: n }))));
  for (const li of document.querySelectorAll("#graph-networks li")) {
    li.querySelector(".swatch").style.background = colourOf(li.dataset.network);
  }
  const shown = total > received ? ` (from the first ${received} of ${total} entities that point here)` : "";
  $("graph-status").textContent = `${out.length} outgoing, ${inc.length} incoming${shown}${refused}`;
  agora.graph = { id: entity.id, outgoing: out, incoming: inc };
}

// -- history -----------------------------------------------------------------------------------------------------
let chart = null;
async function drawHistory(event) {
  event?.preventDefault();
  await guarded(async () => {
    const attr = api.expand($("h-attr").value.trim()), method = $("h-aggr").value;
    const params = { attrs: attr, options: method ? "aggregatedValues" : "temporalValues" };
    if (method) Object.assign(params, { aggrMethods: method, aggrPeriodDuration: $("h-period").value });
    const body = await api.json(`temporal/entities/${encodeURIComponent($("h-id").value.trim())}`, { params });
    const series = [].concat(body[attr] || []).flatMap((a) => (method ? a[method] : a.values) || []);
    const points = series.map((p) => [Date.parse(p[1]) / 1000, Number(p[0])])
      .filter(([t, v]) => Number.isFinite(t) && Number.isFinite(v)).sort((a, b) => a[0] - b[0]);
    chart?.destroy();
    $("chart").replaceChildren();
    const label = `${$("h-attr").value}${method ? ` (${method} per ${$("h-period").value})` : ""}`;
    chart = new window.uPlot({ width: Math.min(900, innerWidth - 40), height: 320, title: label,
      series: [{}, { label, stroke: "#0b5cad", width: 2, points: { show: true } }] },
    [points.map((p) => p[0]), points.map((p) => p[1])], $("chart"));
    agora.chartPoints = points.length;
    $("h-status").textContent = `${points.length} ${method ? "periods" : "instances"}`;
  });
}

// -- live feed (record 0407): of a type, in an area (the map's view, kept as the map moves) --------------------------
let feed = null;
let lastSeq = null; // the stream's start or its last change: a stream started again resumes after it
function feedArea() {
  const kind = $("l-area").value;
  const polygon = kind === "view" ? agora.viewBox
    : kind === "drawn" && agora.drawnArea ? JSON.stringify([agora.drawnArea]) : null;
  return polygon ? { georel: "intersects", geometry: "Polygon", coordinates: polygon } : null;
}

function startFeed(event) {
  event?.preventDefault();
  feed?.abort();
  feed = new AbortController();
  const type = $("l-type").value.trim(), area = feedArea();
  const params = { ...(type ? { type: api.expand(type) } : {}), ...(area || {}),
    ...(lastSeq !== null ? { after: lastSeq } : {}) };
  agora.feedArea = area && JSON.parse(area.coordinates)[0];
  const kind = $("l-area").value;
  if (kind === "drawn" && !agora.drawnArea) {
    $("l-status").textContent = "No area drawn: draw one on the map (Draw an area), then follow again";
    return;
  }
  const named = kind === "view" ? "the map's view" : "the drawn area";
  const where = agora.feedArea ? ` in ${named} (${boxText(agora.feedArea)})` : "";
  $("l-status").textContent = `Following ${type || "every type"}${where}`;
  const onEvent = (change, seq) => {
    if (seq !== undefined) lastSeq = seq;
    if (change === null) return; // only the stream's start
    agora.feed.push(change);
    const what = change.deleted ? "deleted" : `changed ${change.changed.map(api.compact).join(", ")}`;
    const item = el("li", { "data-id": change.id },
      el("time", { text: change.at }), ` ${[].concat(change.type).map(api.compact).join(",")} `,
      el("button", { type: "button", class: "link", onclick: () => openEntity(change.id), text: change.id }),
      ` ${what}`);
    $("feed").prepend(item);
    while ($("feed").children.length > 200) $("feed").lastChild.remove();
  };
  guarded(() => api.follow(params, onEvent, feed.signal));
}

const corner = (c) => c.map((v) => v.toFixed(3)).join(", ");
const boxText = (ring) => `${corner(ring[0])} to ${corner(ring[2])}`;

// -- operations (records 0404-0406): import runs, subscriptions, registrations, the kit's latest report ---------------
// Each part asks the API on its own: what one is refused (403 to a user who is no administrator, 404 for a setting
// the broker lacks) is said in that part's note, and the others still show.
async function loadOperations() {
  $("ops-status").textContent = "Loading…";
  const parts = await Promise.all([part("imports", loadImports), part("subscriptions", loadSubscriptions),
    part("registrations", loadRegistrations), part("conformance", loadConformance)]);
  agora.operations = Object.fromEntries(parts);
  $("ops-status").textContent = "Operations loaded";
}

async function part(name, load) {
  const note = $(`${name}-note`);
  note.textContent = "";
  try {
    return [name, await load()];
  } catch (error) {
    note.textContent = `${error.status === 403 ? "Not shown to you: " : ""}${error.message}`
      + `${error.status ? ` (HTTP ${error.status})` : ""}`;
    return [name, null];
  }
}

const text = (v) => (v === undefined || v === null ? "" : String(v));
const cell = (v, cls) => el("td", cls ? { class: cls, text: text(v) } : { text: text(v) });
const count = (n, bad = false) => el("td", { class: bad && n > 0 ? "num failed" : "num", text: String(n ?? 0) });
const rowHead = (v) => el("th", { scope: "row", text: text(v) });
const tableHead = (...names) => el("thead", {}, el("tr", {}, ...names.map((n) => el("th", { scope: "col", text: n }))));

async function loadImports() {
  const runs = await api.json("agora/imports");
  $("imports").tBodies[0].replaceChildren(...runs.map(importRow));
  if (!runs.length) $("imports-note").textContent = "No import run yet.";
  return runs.length;
}

function importRow(run) {
  if (run.problem) {
    return el("tr", { "data-file": run.file }, rowHead(run.file), el("td", { colspan: "12", class: "failed",
      text: run.problem }));
  }
  const c = run.counts;
  const sent = Object.entries(run.sent).map(([type, n]) => `${api.compact(type)} ${n}`).join(", ");
  return el("tr", { "data-file": run.file }, rowHead(run.file), cell(run.adapter), cell(run.endedAt),
    cell(run.durationSeconds === null ? "" : `${run.durationSeconds} s`), count(c.created), count(c.updated),
    count(c.unchanged), count(c.refused, true), count(c.invalid, true), count(c.pruned), count(c.rejectedRows, true),
    cell(sent), cell(run.succeeded ? "wrote everything" : "partial", run.succeeded ? "ok" : "failed"));
}

async function all(path) {
  const out = [];
  for await (const page of api.pages(path, { params: { limit: 1000 } }, 10000)) out.push(...page);
  return out;
}

async function loadSubscriptions() {
  const subs = await all("subscriptions");
  $("subscriptions").tBodies[0].replaceChildren(...subs.map((s) => {
    const n = s.notification || {};
    return el("tr", { "data-id": s.id }, rowHead(s.id), cell(s.status), cell(n.status, n.status === "failed"
      ? "failed" : ""), count(n.timesSent), count(n.timesFailed, true), cell(n.lastSuccess), cell(n.lastFailure));
  }));
  if (!subs.length) $("subscriptions-note").textContent = "No subscription.";
  return subs.length;
}

async function loadRegistrations() {
  const regs = await all("csourceRegistrations");
  $("registrations").tBodies[0].replaceChildren(...regs.map((r) => el("tr", { "data-id": r.id }, rowHead(r.id),
    cell(r.endpoint), cell((r.information || []).flatMap((i) => (i.entities || []).map((e) => api.compact(e.type)))
      .join(", ")), cell(r.mode || "inclusive"), cell(r.status, r.status === "failed" ? "failed" : ""),
    count(r.timesSent), count(r.timesFailed, true), cell(r.lastSuccess), cell(r.lastFailure))));
  if (!regs.length) $("registrations-note").textContent = "No context source registration.";
  return regs.length;
}

async function loadConformance() {
  const r = await api.json("agora/conformance/latest");
  const c = r.counts;
  const summary = el("p", { id: "conformance-summary", text: `${r.file}: ${r.broker}`
    + `${r.tenant ? ` (tenant ${r.tenant})` : ""}, run ${r.started} in ${r.durationSeconds} s: ${c.passed} passed, `
    + `${c.failed} failed, ${c.notImplemented} not implemented, ${c.knownGap} known gaps` });
  const clauses = el("table", { id: "conformance-clauses", "aria-label": "Cases per clause" },
    tableHead("Clause", "Title", "Passed", "Failed", "Not implemented", "Known gaps"),
    el("tbody", {}, ...r.clauses.map((k) => el("tr", { "data-clause": k.clause }, rowHead(k.clause), cell(k.title),
      count(k.counts.passed), count(k.counts.failed, true), count(k.counts.notImplemented),
      count(k.counts.knownGap, true)))));
  const failed = r.cases.filter((k) => k.outcome === "failed" || k.outcome === "knownGap");
  const list = failed.length ? el("ul", { id: "conformance-failures" }, ...failed.map(failure))
    : el("p", { text: "No case failed." });
  $("conformance").replaceChildren(summary, clauses, el("h4", { text: "Failures and known gaps" }), list);
  return { file: r.file, clauses: r.clauses.length, failed: failed.length };
}

function failure(k) {
  const what = k.outcome === "failed" ? "failed" : `known gap (${k.knownGap?.ref}: ${k.knownGap?.reason})`;
  return el("li", { "data-case": k.name }, el("code", { text: k.name }), ` ${k.clause}, ${what}: ${k.requirement}`,
    el("details", {}, el("summary", { text: k.detail.split("\n")[0] || "details" }),
      el("pre", { text: [k.detail, ...(k.exchanges || [])].join("\n\n") })));
}

// -- start -------------------------------------------------------------------------------------------------------
async function signInControls() {
  const config = await (await fetch("/console/config.json")).json();
  $("oidc").replaceChildren(...config.issuers.map((issuer) => el("button", { type: "button",
    onclick: () => guarded(() => api.signIn(issuer)), text: `Sign in with ${new URL(issuer.issuer).host}` })));
  const c = api.credentials();
  $("who").textContent = c ? (c.kind === "key" ? "API key in use" : "Signed in") : "";
  return config;
}

async function main() {
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showView(tab.dataset.view));
  $("signin").addEventListener("submit", (e) => { e.preventDefault(); api.useApiKey($("apikey").value.trim());
    location.reload(); });
  $("search").addEventListener("submit", search);
  $("history").addEventListener("submit", drawHistory);
  $("live").addEventListener("submit", startFeed);
  await guarded(api.finishSignIn);
  const config = await signInControls();
  await api.loadContext();
  if (config.authRequired && !api.credentials()) {
    showError(new Error("This broker needs credentials: sign in or give an API key."));
    return;
  }
  const types = (await guarded(entityTypes)) || [];
  $("s-type").append(...types.map((t) => el("option", { value: t.name, text: api.compact(t.name) })));
  startFeed();
  await startMap(types.filter((t) => t.located).map((t) => t.name));
}

main();
