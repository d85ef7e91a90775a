// edgesight dashboard: live updates over server-sent events and small hand-written SVG charts.
// No dependencies, no CDN; works under the strict Content-Security-Policy the hub sends.
"use strict";

const es = {
  el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  },
  fmtTime(ts) {
    if (ts === null || ts === undefined) return "—";
    return new Date(ts * 1000).toLocaleString();
  },
  localiseTimes(root = document) {
    for (const t of root.querySelectorAll("time[data-ts]")) {
      const ts = parseFloat(t.dataset.ts);
      if (!Number.isNaN(ts)) t.textContent = es.fmtTime(ts);
    }
  },
};

// ---- live stream ----
es.eventRow = function (e) {
  const thumb = es.el("td", { class: "thumb" });
  const detail = "/events/" + encodeURIComponent(e.device_id) + "/" + encodeURIComponent(e.event_id);
  if (e.snapshot_url) {
    thumb.append(es.el("a", { href: detail }, es.el("img", { src: e.snapshot_url, alt: "snapshot", loading: "lazy" })));
  }
  const kind = e.kind + (e.phase !== "instant" ? " · " + e.phase : "");
  const where = (e.zone || e.line || "") + (e.direction ? " " + e.direction : "");
  return es.el("tr", { "data-event-id": e.event_id, class: "fresh" },
    thumb,
    es.el("td", {}, es.el("a", { href: detail }, es.el("time", { "data-ts": e.ts, text: es.fmtTime(e.ts) }))),
    es.el("td", { text: e.device_id }),
    es.el("td", { text: kind }),
    es.el("td", {}, es.el("span", { class: "label", text: e.label }), " " + e.score.toFixed(2)),
    es.el("td", { text: where }));
};

es.deviceCard = function (d) {
  const dl = es.el("dl");
  const rows = [
    ["state", d.state], ["last seen", es.fmtTime(d.last_seen)], ["model", d.model || "—"],
    ["agent", d.agent_version || "—"], ["fps", d.fps === null ? "—" : d.fps.toFixed(1)],
  ];
  for (const [k, v] of rows) {
    dl.append(es.el("dt", { text: k }), es.el("dd", { text: v, class: k === "state" ? "state" : "" }));
  }
  const link = es.el("a", { href: "/devices/" + encodeURIComponent(d.id), text: d.name || d.id });
  const title = es.el("h3", {}, es.el("span", { class: "dot" }), link);
  const cls = "card device " + (d.online ? "online" : "offline");
  const previews = es.el("div", { class: "previews", "data-preview-device": d.id });
  if (window.esCamera) window.esCamera.fill(previews); // the latest frame (camera.js), without a flash
  return es.el("article", { class: cls, "data-device-id": d.id }, title, previews, dl);
};

es.live = function () {
  const events = document.querySelector("[data-live=events]");
  const devices = document.querySelector("[data-live=devices]");
  const state = document.getElementById("live-state");
  if (!events && !devices) return;
  const filterDevice = (events && events.dataset.device) || (devices && devices.dataset.device);
  const source = new EventSource("/api/v1/stream");
  source.onopen = () => { if (state) state.textContent = "live"; };
  source.onerror = () => { if (state) state.textContent = "reconnecting…"; };
  source.addEventListener("events", (msg) => {
    if (!events) return;
    const max = parseInt(events.dataset.max || "50", 10);
    for (const e of JSON.parse(msg.data)) {
      if (filterDevice && e.device_id !== filterDevice) continue;
      if (events.querySelector(`tr[data-event-id="${CSS.escape(e.event_id)}"]`)) continue;
      const empty = events.querySelector("tr.empty");
      if (empty) empty.remove();
      events.prepend(es.eventRow(e));
    }
    while (events.children.length > max) events.lastElementChild.remove();
  });
  source.addEventListener("devices", (msg) => {
    if (!devices) return;
    const list = JSON.parse(msg.data).filter((d) => !filterDevice || d.id === filterDevice);
    if (list.length === 0) return;
    devices.replaceChildren(...list.map(es.deviceCard));
  });
};

// ---- charts: stacked bars for counts, lines for telemetry ----
es.COLOURS = ["#2463c7", "#e07b24", "#1f9d55", "#c0392b", "#8e44ad", "#16a2b8", "#7f8c8d", "#d4ac0d"];
es.svg = function (tag, attrs = {}, text) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
};

es.drawChart = function (container, series, kind) {
  const W = 600, H = 220, L = 40, R = 10, T = 10, B = 30;
  const svg = es.svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" });
  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
  if (xs.length === 0) {
    svg.append(es.svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "no data in this window"));
    container.append(svg);
    container.dataset.drawn = "empty";
    return;
  }
  const x0 = xs[0];
  const x1 = xs.length > 1 ? xs[xs.length - 1] : xs[0] + 1;
  let ymax = 0;
  if (kind === "bars") {
    for (const x of xs) ymax = Math.max(ymax, series.reduce((acc, s) => acc + (s.map.get(x) || 0), 0));
  } else {
    ymax = Math.max(...series.flatMap((s) => s.points.map((p) => p[1])));
  }
  const top = ymax > 0 ? ymax * 1.1 : 1;
  const barRoom = kind === "bars" ? 14 : 0;
  const sx = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R - barRoom);
  const sy = (y) => H - B - (y / top) * (H - T - B);
  for (const frac of [0, 0.5, 1]) {
    const v = ymax * frac;
    svg.append(es.svg("line", { x1: L, y1: sy(v), x2: W - R, y2: sy(v), class: "axis" }));
    svg.append(es.svg("text", { x: L - 4, y: sy(v) + 4, "text-anchor": "end" }, v >= 10 ? Math.round(v) : v.toFixed(1)));
  }
  const daily = x1 - x0 > 2 * 86400 || xs.length === 1;
  const ticks = xs.length === 1 ? [[x0, "start"]] : [[x0, "start"], [(x0 + x1) / 2, "middle"], [x1, "end"]];
  for (const [x, anchor] of ticks) {
    const d = new Date(x * 1000);
    const label = daily ? d.toLocaleDateString() : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    svg.append(es.svg("text", { x: sx(x), y: H - 10, "text-anchor": anchor }, label));
  }
  series.forEach((s, i) => { s.colour = es.COLOURS[i % es.COLOURS.length]; });
  if (kind === "bars") {
    const width = Math.max(2, Math.min(12, (W - L - R) / xs.length - 2));
    for (const x of xs) {
      let base = 0;
      for (const s of series) {
        const v = s.map.get(x) || 0;
        if (!v) continue;
        const rect = es.svg("rect", { x: sx(x), y: sy(base + v), width, height: sy(base) - sy(base + v), fill: s.colour });
        rect.append(es.svg("title", {}, `${s.name}: ${v}`));
        svg.append(rect);
        base += v;
      }
    }
  } else {
    for (const s of series) {
      const d = s.points.map((p, j) => `${j ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join("");
      svg.append(es.svg("path", { d, fill: "none", stroke: s.colour, "stroke-width": 2 }));
    }
  }
  const legend = es.el("div", { class: "legend" });
  for (const s of series) {
    const swatch = es.el("i");
    swatch.style.background = s.colour;
    legend.append(es.el("span", {}, swatch, s.name));
  }
  container.append(svg, legend);
  container.dataset.drawn = "true";
};

es.loadChart = async function (container) {
  const ds = container.dataset;
  try {
    if (ds.chart === "counts") {
      const q = new URLSearchParams({ group: ds.group, bucket: ds.bucket || "3600" });
      if (ds.since) q.set("since", ds.since);
      if (ds.device) q.set("device", ds.device);
      const body = await (await fetch("/api/v1/counts?" + q)).json();
      const byKey = new Map();
      for (const item of body.items) {
        const name = item.key + (item.direction ? " " + item.direction : "");
        if (!byKey.has(name)) byKey.set(name, { name, points: [], map: new Map() });
        byKey.get(name).points.push([item.bucket, item.count]);
        byKey.get(name).map.set(item.bucket, item.count);
      }
      es.drawChart(container, [...byKey.values()], "bars");
    } else if (ds.chart === "telemetry") {
      const q = new URLSearchParams({ since: ds.since || "" });
      const url = `/api/v1/devices/${encodeURIComponent(ds.device)}/telemetry?` + q;
      const body = await (await fetch(url)).json();
      const pick = (field) => body.items.filter((t) => t[field] !== null).map((t) => [t.ts, t[field]]);
      const series = [{ name: "p50", points: pick("inference_ms_p50") }, { name: "p95", points: pick("inference_ms_p95") }];
      es.drawChart(container, series.filter((s) => s.points.length), "lines");
    }
  } catch (err) {
    container.append(es.el("p", { class: "muted", text: "chart unavailable: " + err }));
    container.dataset.drawn = "error";
  }
};

document.addEventListener("DOMContentLoaded", () => {
  es.localiseTimes();
  es.live();
  for (const chart of document.querySelectorAll("[data-chart]")) es.loadChart(chart);
});
