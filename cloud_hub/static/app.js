// edgesight dashboard: live updates over server-sent events and small SVG charts. No dependencies.
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

es.eventRow = function (e) {
  const thumb = es.el("td", { class: "thumb" });
  if (e.snapshot_url) thumb.append(es.el("img", { src: e.snapshot_url, alt: "snapshot", loading: "lazy" }));
  const kind = e.kind + (e.phase !== "instant" ? " · " + e.phase : "");
  const where = (e.zone || e.line || "") + (e.direction ? " " + e.direction : "");
  return es.el("tr", { "data-event-id": e.event_id, class: "fresh" },
    thumb,
    es.el("td", {}, es.el("time", { "data-ts": e.ts, text: es.fmtTime(e.ts) })),
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
  for (const [k, v] of rows) dl.append(es.el("dt", { text: k }), es.el("dd", { text: v, class: k === "state" ? "state" : "" }));
  const title = es.el("h3", {}, es.el("span", { class: "dot" }), d.name || d.id);
  const card = es.el("article", { class: "card device " + (d.online ? "online" : "offline"), "data-device-id": d.id }, title, dl);
  if (document.body.dataset.deviceLinks !== undefined) {
    card.addEventListener("click", () => { window.location = "/devices/" + encodeURIComponent(d.id); });
  }
  return card;
};

es.live = function () {
  const events = document.querySelector("[data-live=events]");
  const devices = document.querySelector("[data-live=devices]");
  const state = document.getElementById("live-state");
  if (!events && !devices) return;
  const filterDevice = events ? events.dataset.device : undefined;
  const source = new EventSource("/api/v1/stream");
  source.onopen = () => { if (state) state.textContent = "live"; };
  source.onerror = () => { if (state) state.textContent = "reconnecting…"; };
  source.addEventListener("events", (msg) => {
    if (!events) return;
    const max = parseInt(events.dataset.max || "50", 10);
    for (const e of JSON.parse(msg.data)) {
      if (filterDevice && e.device_id !== filterDevice) continue;
      if (events.querySelector(`tr[data-event-id="${CSS.escape(e.event_id)}"]`)) continue;
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

document.addEventListener("DOMContentLoaded", () => {
  es.localiseTimes();
  es.live();
});
