// edgesight camera views: the latest frame per camera with zones, lines and live boxes drawn over it,
// the zone/line editor on the device page, and the event detail picture. Hand-written, no dependencies,
// served by the hub itself (no CDN), within the hub's Content-Security-Policy.
"use strict";

const cam = {
  cache: new Map(), // device id -> [preview]
  POLL_MS: 2000,
  ZONE: "#16a2b8",
  LINE: "#e07b24",
  BOX: "#1f9d55",
  HILITE: "#c0392b",
};

cam.svg = function (tag, attrs = {}, text) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
};

cam.el = function (tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
};

// Draw geometry and boxes (all normalised 0..1) on an SVG whose viewBox is W x H.
cam.draw = function (svg, W, H, g, opts = {}) {
  svg.replaceChildren();
  // Sizes in screen pixels whatever the picture's scale: ~12 px text, 2 px strokes.
  const shown = svg.getBoundingClientRect().width || W;
  const px = W / shown;
  const fs = 12 * px;
  const stroke = 2 * px;
  const text = (x, y, s, colour, anchor = "start") => {
    const t = cam.svg("text", { x, y, fill: "#fff", stroke: colour, "stroke-width": fs / 5, "paint-order": "stroke",
      "font-size": fs, "font-weight": 600, "text-anchor": anchor, class: "ov-text" }, s);
    svg.append(t);
  };
  for (const z of g.zones || []) {
    const hot = opts.zone && opts.zone === z.name;
    const colour = hot ? cam.HILITE : cam.ZONE;
    const pts = z.polygon.map((p) => `${p[0] * W},${p[1] * H}`).join(" ");
    svg.append(cam.svg("polygon", { points: pts, fill: colour, "fill-opacity": 0.18, stroke: colour,
      "stroke-width": stroke, class: "ov-zone", "data-name": z.name }));
    if (z.polygon.length) text(z.polygon[0][0] * W + 3, z.polygon[0][1] * H + fs, z.name, colour);
  }
  for (const l of g.lines || []) {
    const hot = opts.line && opts.line === l.name;
    const colour = hot ? cam.HILITE : cam.LINE;
    const [ax, ay, bx, by] = [l.a[0] * W, l.a[1] * H, l.b[0] * W, l.b[1] * H];
    svg.append(cam.svg("line", { x1: ax, y1: ay, x2: bx, y2: by, stroke: colour, "stroke-width": stroke * 1.6,
      class: "ov-line", "data-name": l.name }));
    // The positive side is right of a->b on screen: an arrow from the middle towards it.
    const mx = (ax + bx) / 2, my = (ay + by) / 2, len = Math.hypot(bx - ax, by - ay) || 1;
    const nx = -(by - ay) / len, ny = (bx - ax) / len;
    const tip = [mx + nx * fs * 1.6, my + ny * fs * 1.6];
    svg.append(cam.svg("line", { x1: mx, y1: my, x2: tip[0], y2: tip[1], stroke: colour, "stroke-width": stroke }));
    svg.append(cam.svg("circle", { cx: tip[0], cy: tip[1], r: stroke * 1.8, fill: colour }));
    text(tip[0] + 2, tip[1] + fs / 3, `${l.positive || "in"}`, colour);
    text(mx - nx * fs * 1.6, my - ny * fs * 1.6 + fs / 3, `${l.negative || "out"}`, colour, "middle");
    text(ax + 3, ay + fs, l.name, colour);
  }
  for (const b of g.boxes || []) {
    const [x1, y1, x2, y2] = b.bbox;
    const colour = opts.boxColour || cam.BOX;
    svg.append(cam.svg("rect", { x: x1 * W, y: y1 * H, width: (x2 - x1) * W, height: (y2 - y1) * H, fill: "none",
      stroke: colour, "stroke-width": stroke, class: "ov-box" }));
    const label = b.label + (b.score !== undefined ? " " + Number(b.score).toFixed(2) : "") +
      (b.track_id !== undefined && b.track_id !== null ? " #" + b.track_id : "");
    text(x1 * W + 2, Math.max(fs, y1 * H - 3), label, colour);
  }
  for (const p of opts.draft || []) {
    svg.append(cam.svg("circle", { cx: p[0] * W, cy: p[1] * H, r: stroke * 2.5, fill: cam.HILITE, class: "ov-draft" }));
  }
  if ((opts.draft || []).length > 1) {
    const pts = opts.draft.map((p) => `${p[0] * W},${p[1] * H}`).join(" ");
    svg.append(cam.svg("polyline", { points: pts, fill: "none", stroke: cam.HILITE, "stroke-width": stroke,
      "stroke-dasharray": `${stroke * 3} ${stroke * 2}` }));
  }
};

cam.age = function (ts) {
  const s = Math.max(0, Date.now() / 1000 - ts);
  return s < 90 ? `${Math.round(s)} s ago` : s < 5400 ? `${Math.round(s / 60)} min ago` : new Date(ts * 1000).toLocaleString();
};

// One camera's latest frame with its overlay (fleet cards, device page).
cam.frame = function (p) {
  const box = cam.el("figure", { class: "frame", "data-camera": p.camera, "data-device": p.device_id });
  const img = cam.el("img", { src: p.image_url, alt: `latest frame of ${p.device_id} / ${p.camera}`,
    width: p.width, height: p.height });
  const svg = cam.svg("svg", { viewBox: `0 0 ${p.width} ${p.height}`, class: "overlay" });
  cam.draw(svg, p.width, p.height, p);
  box.append(cam.el("div", { class: "pic" }, img, svg), cam.el("figcaption", {}, cam.el("b", { text: p.camera }), " · ",
    cam.el("span", { class: "age", "data-ts": p.ts, text: cam.age(p.ts) })));
  return box;
};

cam.fill = function (container) {
  const list = cam.cache.get(container.dataset.previewDevice) || [];
  if (!list.length) return;
  const current = [...container.querySelectorAll("figure.frame")];
  if (current.length === list.length) { // same cameras: swap picture and overlay in place (no flicker)
    list.forEach((p, i) => {
      const fig = current[i];
      const img = fig.querySelector("img");
      if (img.getAttribute("src") !== p.image_url) {
        const next = new Image();
        next.onload = () => { img.src = p.image_url; cam.draw(fig.querySelector("svg"), p.width, p.height, p); };
        next.src = p.image_url;
      }
      fig.querySelector(".age").textContent = cam.age(p.ts);
    });
    return;
  }
  container.replaceChildren(...list.map(cam.frame));
};

cam.poll = async function () {
  const containers = document.querySelectorAll("[data-preview-device]");
  const editors = document.querySelectorAll("[data-editor-device]");
  if (!containers.length && !editors.length) return;
  const one = document.body.dataset.previewScope;
  try {
    const body = await (await fetch("/api/v1/cameras" + (one ? "?device=" + encodeURIComponent(one) : ""))).json();
    cam.cache = new Map();
    for (const p of body.items) {
      if (!cam.cache.has(p.device_id)) cam.cache.set(p.device_id, []);
      cam.cache.get(p.device_id).push(p);
    }
    for (const c of document.querySelectorAll("[data-preview-device]")) cam.fill(c);
    for (const e of editors) if (e.editor) e.editor.update();
  } catch (err) {
    // the next poll tries again; the last picture stays
  }
};

// ---------------------------------------------------------------------------------------- editor
cam.csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

class CameraEditor {
  constructor(root) {
    this.root = root;
    this.device = root.dataset.editorDevice;
    this.camera = null;
    this.geometry = null; // the working copy being edited
    this.dirty = false;
    this.mode = null; // "line" | "zone" | null
    this.draft = [];
    this.preview = null;
    this.status = root.querySelector("[data-config-status]");
    this.figure = root.querySelector("figure.frame");
    this.img = this.figure.querySelector("img");
    this.svg = this.figure.querySelector("svg");
    this.list = root.querySelector("[data-shapes]");
    this.nameInput = root.querySelector("[name=shape_name]");
    this.posInput = root.querySelector("[name=positive]");
    this.negInput = root.querySelector("[name=negative]");
    root.querySelector("[data-action=line]").addEventListener("click", () => this.start("line"));
    root.querySelector("[data-action=zone]").addEventListener("click", () => this.start("zone"));
    root.querySelector("[data-action=finish]").addEventListener("click", () => this.finishZone());
    root.querySelector("[data-action=cancel]").addEventListener("click", () => this.cancel());
    root.querySelector("[data-action=save]").addEventListener("click", () => this.save());
    this.svg.addEventListener("click", (ev) => this.click(ev));
    this.refreshState();
  }

  update() {
    const list = cam.cache.get(this.device) || [];
    if (!list.length) return;
    this.preview = list.find((p) => p.camera === this.camera) || list[0];
    this.camera = this.preview.camera;
    this.root.querySelector("[data-camera-name]").textContent = this.camera;
    if (!this.dirty && !this.mode) {
      this.geometry = { zones: this.preview.zones.map((z) => ({ ...z })), lines: this.preview.lines.map((l) => ({ ...l })) };
    }
    if (this.img.getAttribute("src") !== this.preview.image_url) this.img.src = this.preview.image_url;
    this.img.width = this.preview.width;
    this.img.height = this.preview.height;
    this.svg.setAttribute("viewBox", `0 0 ${this.preview.width} ${this.preview.height}`);
    this.root.hidden = false;
    this.render();
  }

  render() {
    if (!this.preview || !this.geometry) return;
    cam.draw(this.svg, this.preview.width, this.preview.height,
      { ...this.geometry, boxes: this.preview.boxes }, { draft: this.draft });
    this.figure.classList.toggle("drawing", Boolean(this.mode));
    this.list.replaceChildren();
    for (const [kind, items] of [["zone", this.geometry.zones], ["line", this.geometry.lines]]) {
      items.forEach((item, i) => {
        const remove = cam.el("button", { type: "button", class: "secondary", text: "remove" });
        remove.addEventListener("click", () => { items.splice(i, 1); this.dirty = true; this.render(); });
        const what = kind === "line" ? `line ${item.name} (${item.positive} / ${item.negative})` : `zone ${item.name}`;
        this.list.append(cam.el("li", { "data-kind": kind, "data-name": item.name }, cam.el("span", { text: what }), " ", remove));
      });
    }
    const hint = this.root.querySelector("[data-hint]");
    hint.textContent = this.mode === "line" ? "Click the line's two ends on the picture (crossing left → right of the first → second point counts as the first direction)."
      : this.mode === "zone" ? `Click the zone's corners on the picture, then “Finish zone” (${this.draft.length} so far).` : "";
  }

  start(mode) {
    this.mode = mode;
    this.draft = [];
    this.render();
  }

  cancel() {
    this.mode = null;
    this.draft = [];
    this.render();
  }

  click(ev) {
    if (!this.mode) return;
    const r = this.svg.getBoundingClientRect();
    const x = Math.min(1, Math.max(0, (ev.clientX - r.left) / r.width));
    const y = Math.min(1, Math.max(0, (ev.clientY - r.top) / r.height));
    this.draft.push([Math.round(x * 1000) / 1000, Math.round(y * 1000) / 1000]);
    if (this.mode === "line" && this.draft.length === 2) {
      const name = this.nameInput.value.trim() || `line${this.geometry.lines.length + 1}`;
      this.geometry.lines = this.geometry.lines.filter((l) => l.name !== name);
      this.geometry.lines.push({ name, a: this.draft[0], b: this.draft[1],
        positive: this.posInput.value.trim() || "in", negative: this.negInput.value.trim() || "out" });
      this.dirty = true;
      this.cancel();
      return;
    }
    this.render();
  }

  finishZone() {
    if (this.mode !== "zone") return;
    const name = this.nameInput.value.trim() || `zone${this.geometry.zones.length + 1}`;
    this.geometry.zones = this.geometry.zones.filter((z) => z.name !== name);
    this.geometry.zones.push({ name, polygon: this.draft });
    this.dirty = true;
    this.cancel();
  }

  say(text, cls) {
    this.status.textContent = text;
    this.status.className = "config-status " + (cls || "");
  }

  async save() {
    if (!this.camera) return;
    this.say("sending to the camera…", "pending");
    const body = { cameras: { [this.camera]: this.geometry } };
    const resp = await fetch(`/api/v1/devices/${encodeURIComponent(this.device)}/config`, {
      method: "PUT", headers: { "Content-Type": "application/json", "X-CSRF-Token": cam.csrf() },
      body: JSON.stringify(body) });
    const answer = await resp.json();
    if (!resp.ok) { this.say("not sent: " + (answer.error || resp.status), "refused"); return; }
    this.waitFor(answer.desired_id);
  }

  async waitFor(configId, tries = 60) {
    for (let i = 0; i < tries; i++) {
      const state = await this.refreshState();
      if (state && state.reported_id === configId) {
        if (state.state === "applied") {
          this.dirty = false;
        }
        return;
      }
      this.say(`sent (${configId}); waiting for the camera to answer…`, "pending");
      await new Promise((r) => setTimeout(r, 1000));
    }
    this.say(`sent, but the camera has not answered yet: it applies the config when it next connects`, "pending");
  }

  async refreshState() {
    const resp = await fetch(`/api/v1/devices/${encodeURIComponent(this.device)}/config`);
    if (!resp.ok) return null;
    const s = await resp.json();
    if (s.state === "applied") this.say(`applied by the camera (config ${s.reported_id})`, "applied");
    else if (s.state === "refused") this.say(`refused by the camera: ${s.reason} — the previous zones and lines keep running`, "refused");
    else this.say("zones and lines as in the camera's own config file", "");
    return s;
  }
}

// ------------------------------------------------------------------------------- event detail
cam.eventFrame = function (fig) {
  const img = fig.querySelector("img");
  const svg = fig.querySelector("svg");
  const data = JSON.parse(fig.dataset.overlay);
  const draw = () => {
    const W = img.naturalWidth || 640, H = img.naturalHeight || 384;
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    cam.draw(svg, W, H, data, { zone: data.zone, line: data.line, boxColour: cam.HILITE });
    fig.dataset.drawn = "true";
  };
  if (img.complete && img.naturalWidth) draw(); else img.addEventListener("load", draw);
};

document.addEventListener("DOMContentLoaded", () => {
  for (const fig of document.querySelectorAll("[data-event-frame]")) cam.eventFrame(fig);
  for (const root of document.querySelectorAll("[data-editor-device]")) root.editor = new CameraEditor(root);
  if (document.querySelector("[data-preview-device], [data-editor-device]")) {
    cam.poll();
    setInterval(cam.poll, cam.POLL_MS);
  }
});
window.esCamera = cam;
