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

// Charts are drawn at the container's real pixel width (no scaling), so 13 px text stays 13 px on a
// phone and on a wide screen; the x axis always spans the whole chosen window.
es.niceStep = function (max, ticks) {
  const raw = max / ticks;
  const mag = Math.pow(10, Math.floor(Math.log10(raw || 1)));
  for (const m of [1, 2, 2.5, 5, 10]) if (raw <= m * mag) return Math.max(m * mag, 1e-9);
  return 10 * mag;
};

es.timeLabel = function (ts, span) {
  const d = new Date(ts * 1000);
  if (span > 3 * 86400) return d.toLocaleDateString([], { month: "short", day: "numeric" });
  if (span > 86400) return d.toLocaleDateString([], { weekday: "short" }) + " " +
    d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
};

es.drawChart = function (container, series, kind, opts) {
  const old = container.querySelector(".plot");
  const plot = es.el("div", { class: "plot" });
  const W = Math.max(280, Math.floor(container.clientWidth - 16)), H = W < 500 ? 220 : 280;
  const L = 48, R = 12, T = 12, B = 34;
  const svg = es.svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img" });
  const x0 = opts.since, x1 = Math.max(opts.until, opts.since + 1), bucket = opts.bucket || 0;
  const sx = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  let ymax = 0;
  if (kind === "bars") {
    const sums = new Map();
    for (const s of series) for (const [x, v] of s.points) sums.set(x, (sums.get(x) || 0) + v);
    ymax = Math.max(0, ...sums.values());
  } else {
    ymax = Math.max(0, ...series.flatMap((s) => s.points.map((p) => p[1])));
  }
  const step = es.niceStep(ymax || 1, 4);
  const top = Math.max(step, Math.ceil((ymax || 1) / step) * step);
  const sy = (y) => H - B - (y / top) * (H - T - B);
  for (let v = 0; v <= top + 1e-9; v += step) {
    svg.append(es.svg("line", { x1: L, y1: sy(v), x2: W - R, y2: sy(v), class: "grid" }));
    const label = step >= 1 ? String(Math.round(v)) : v.toFixed(1);
    svg.append(es.svg("text", { x: L - 6, y: sy(v) + 4, "text-anchor": "end", class: "tick" }, label));
  }
  const nticks = Math.max(2, Math.min(7, Math.floor((W - L - R) / 110)));
  for (let i = 0; i <= nticks; i++) {
    const x = x0 + ((x1 - x0) * i) / nticks;
    const anchor = i === 0 ? "start" : i === nticks ? "end" : "middle";
    svg.append(es.svg("line", { x1: sx(x), y1: H - B, x2: sx(x), y2: H - B + 4, class: "axis" }));
    svg.append(es.svg("text", { x: sx(x), y: H - B + 18, "text-anchor": anchor, class: "tick" }, es.timeLabel(x, x1 - x0)));
  }
  svg.append(es.svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }));
  series.forEach((s, i) => { s.colour = es.COLOURS[i % es.COLOURS.length]; });
  if (kind === "bars") {
    const bw = Math.max(1, sx(x0 + bucket) - sx(x0) - 1);
    const base = new Map();
    for (const s of series) {
      for (const [x, v] of s.points) {
        if (!v || x + bucket < x0 || x > x1) continue;
        const b = base.get(x) || 0;
        const left = Math.max(L, sx(x));
        const rect = es.svg("rect", { x: left, y: sy(b + v), width: Math.max(1, Math.min(bw, W - R - left)),
          height: sy(b) - sy(b + v), fill: s.colour });
        rect.append(es.svg("title", {}, `${s.name}: ${v} (${new Date(x * 1000).toLocaleString()})`));
        svg.append(rect);
        base.set(x, b + v);
      }
    }
  } else {
    for (const s of series) {
      const pts = s.points.filter((p) => p[0] >= x0 - bucket && p[0] <= x1);
      const d = pts.map((p, j) => `${j ? "L" : "M"}${sx(Math.max(x0, p[0])).toFixed(1)},${sy(p[1]).toFixed(1)}`).join("");
      if (d) svg.append(es.svg("path", { d, fill: "none", stroke: s.colour, "stroke-width": 2 }));
    }
  }
  if (!series.some((s) => s.points.length)) {
    svg.append(es.svg("text", { x: (L + W - R) / 2, y: (T + H - B) / 2, "text-anchor": "middle", class: "empty" },
      "nothing counted in this window yet"));
  }
  const legend = es.el("div", { class: "legend" });
  for (const s of series) {
    const swatch = es.el("i");
    swatch.style.background = s.colour;
    const total = kind === "bars" ? " " + s.points.reduce((a, p) => a + p[1], 0) : "";
    legend.append(es.el("span", {}, swatch, s.name + total));
  }
  plot.append(svg, legend);
  if (old) old.replaceWith(plot); else container.append(plot);
  container.dataset.drawn = series.some((s) => s.points.length) ? "true" : "empty";
  container.dataset.refreshed = String((parseInt(container.dataset.refreshed || "0", 10)) + 1);
};

es.window = function (ds) {
  const now = Date.now() / 1000;
  if (ds.window) return { since: now - parseFloat(ds.window), until: now };
  return { since: parseFloat(ds.since) || now - 86400, until: parseFloat(ds.until) || now };
};

es.loadChart = async function (container) {
  const ds = container.dataset;
  const { since, until } = es.window(ds);
  try {
    if (ds.chart === "counts") {
      const q = new URLSearchParams({ group: ds.group, bucket: ds.bucket || "3600", since: String(since) });
      if (ds.device) q.set("device", ds.device);
      const body = await (await fetch("/api/v1/counts?" + q)).json();
      const byKey = new Map();
      for (const item of body.items) {
        const name = item.key + (item.direction ? " " + item.direction : "");
        if (!byKey.has(name)) byKey.set(name, { name, points: [] });
        byKey.get(name).points.push([item.bucket, item.count]);
      }
      es.drawChart(container, [...byKey.values()], ds.group === "occupancy" ? "lines" : "bars",
        { since, until: body.until || until, bucket: body.bucket_s });
    } else if (ds.chart === "telemetry") {
      const q = new URLSearchParams({ since: String(since) });
      const url = `/api/v1/devices/${encodeURIComponent(ds.device)}/telemetry?` + q;
      const body = await (await fetch(url)).json();
      const pick = (field) => body.items.filter((t) => t[field] !== null).map((t) => [t.ts, t[field]]);
      const series = [{ name: "p50 ms", points: pick("inference_ms_p50") }, { name: "p95 ms", points: pick("inference_ms_p95") }];
      es.drawChart(container, series.filter((s) => s.points.length), "lines", { since, until, bucket: 0 });
    }
  } catch (err) {
    container.dataset.drawn = "error";
  }
};

// A range picker (<select data-range>) sets every chart's window and bucket; charts refresh every 10 s.
es.REFRESH_MS = 10000;
es.BUCKET_FOR = { 3600: 300, 21600: 900, 86400: 3600, 604800: 21600, 2592000: 86400 };
es.charts = function () {
  const charts = [...document.querySelectorAll("[data-chart]")];
  if (!charts.length) return;
  const picker = document.querySelector("select[data-range]");
  if (picker) {
    picker.addEventListener("change", () => {
      const w = parseInt(picker.value, 10);
      for (const c of charts) {
        c.dataset.window = String(w);
        if (c.dataset.chart === "counts") c.dataset.bucket = String(es.BUCKET_FOR[w] || 3600);
        es.loadChart(c);
      }
    });
  }
  for (const c of charts) es.loadChart(c);
  setInterval(() => { for (const c of charts) es.loadChart(c); }, es.REFRESH_MS);
  let width = window.innerWidth;
  window.addEventListener("resize", () => {
    if (Math.abs(window.innerWidth - width) < 40) return;
    width = window.innerWidth;
    for (const c of charts) es.loadChart(c);
  });
};

document.addEventListener("DOMContentLoaded", () => {
  es.localiseTimes();
  es.live();
  es.charts();
});
