// reseq studio: the page. State lives in `state` (mirrored in the URL hash), the server answers
// every question about the collection (see reseq/studio/app.py); this file wires the panels.
import { MapView, colorRamp } from "./map.js";
import { Player } from "./player.js";

const $ = (id) => document.getElementById(id);
const DEFAULTS = {
  keys: [], closed: false, swaps: {}, synth: {}, excluded: [], mode: "keys", loop_frame: null,
  loop_length: null, sub_length: 12, sub_pick: 0, fps: 12, playback: "loop", onion: 0,
  style: "mst", color: "index",
};
const EDIT_FIELDS = ["keys", "closed", "swaps", "synth", "excluded", "mode", "loop_frame", "loop_length",
  "sub_length", "sub_pick"];

let info = null, labels = [], state = { ...DEFAULTS }, seq = { frames: [], steps: [], closed: false };
let map = null, player = null, selStep = -1, selKey = -1, hovered = -1;
const undoStack = [], redoStack = [];
const images = new Map(), rows = new Map();
let refreshId = 0;

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const r = await fetch(path, opts);
  const data = await r.json().catch(() => ({ error: `HTTP ${r.status}` }));
  if (!r.ok) { const e = new Error(data.error || `HTTP ${r.status}`); e.status = r.status; throw e; }
  return data;
}

// a frame of the sequence: an index, or "s:a:b:count:k" for a synthesized in-between
function frameUrl(i) {
  if (typeof i === "string") {
    const [, a, b, c, k] = i.split(":");
    return `/api/synth/${a}/${b}/${c}/${k}.png`;
  }
  return `/api/frame/${i}.png`;
}

function image(i) {
  let im = images.get(i);
  if (!im) { im = new Image(); im.src = frameUrl(i); images.set(i, im); }
  return im;
}

async function distRow(i) {
  if (!rows.has(i)) rows.set(i, api(`/api/distances/${i}`).then((d) => d.distances));
  return rows.get(i);
}

// ---- URL hash ------------------------------------------------------------------------------
function encodeHash() {
  const p = new URLSearchParams();
  p.set("k", state.keys.join(","));
  if (state.closed) p.set("c", "1");
  const sw = Object.entries(state.swaps).map(([a, b]) => `${a}:${b}`).join(",");
  if (sw) p.set("s", sw);
  const sy = Object.entries(state.synth).map(([a, b]) => `${a}:${b}`).join(",");
  if (sy) p.set("y", sy);
  if (state.excluded.length) p.set("x", state.excluded.join(","));
  p.set("m", state.mode);
  if (state.loop_frame !== null) p.set("lf", state.loop_frame);
  if (state.loop_length !== null) p.set("ll", state.loop_length);
  p.set("sl", state.sub_length); p.set("sp", state.sub_pick);
  p.set("fps", state.fps); p.set("pb", state.playback); p.set("on", state.onion);
  p.set("st", state.style); p.set("col", state.color);
  return "#" + p.toString();
}

function decodeHash(h) {
  const p = new URLSearchParams(h.replace(/^#/, ""));
  const ints = (s) => (s ? s.split(",").filter((x) => x !== "").map(Number) : []);
  const st = { ...DEFAULTS };
  if (p.has("k")) st.keys = ints(p.get("k"));
  st.closed = p.get("c") === "1";
  st.swaps = {};
  for (const pair of (p.get("s") || "").split(",").filter(Boolean)) {
    const [a, b] = pair.split(":").map(Number);
    st.swaps[a] = b;
  }
  st.synth = {};
  for (const pair of (p.get("y") || "").split(",").filter(Boolean)) {
    const [a, b] = pair.split(":").map(Number);
    st.synth[a] = b;
  }
  st.excluded = ints(p.get("x"));
  if (p.has("m")) st.mode = p.get("m");
  if (p.has("lf")) st.loop_frame = Number(p.get("lf"));
  if (p.has("ll")) st.loop_length = Number(p.get("ll"));
  if (p.has("sl")) st.sub_length = Number(p.get("sl"));
  if (p.has("sp")) st.sub_pick = Number(p.get("sp"));
  if (p.has("fps")) st.fps = Number(p.get("fps"));
  if (p.has("pb")) st.playback = p.get("pb");
  if (p.has("on")) st.onion = Number(p.get("on"));
  if (p.has("st")) st.style = p.get("st");
  if (p.has("col")) st.color = p.get("col");
  return st;
}

function saveHash() { history.replaceState(null, "", encodeHash()); }

// ---- edits with undo -----------------------------------------------------------------------
function snapshot() {
  const s = {};
  for (const f of EDIT_FIELDS) s[f] = JSON.parse(JSON.stringify(state[f]));
  return s;
}

let editAt = 0; // performance.now() of the last edit: the filmstrip records how long it took

function edit(fn) {
  editAt = performance.now();
  undoStack.push(snapshot());
  redoStack.length = 0;
  fn();
  refresh();
}

function undo() {
  if (!undoStack.length) return;
  redoStack.push(snapshot());
  Object.assign(state, undoStack.pop());
  refresh();
}

function redo() {
  if (!redoStack.length) return;
  undoStack.push(snapshot());
  Object.assign(state, redoStack.pop());
  refresh();
}

function addKey(i) {
  if (state.excluded.includes(i)) { flash(`frame ${i} is excluded; include it first (X)`); return; }
  if (state.keys.includes(i)) { flash(`frame ${i} is already key ${state.keys.indexOf(i) + 1}`); return; }
  edit(() => { state.keys.push(i); resetEdits(); state.mode = "keys"; });
}

function removeKey(k) {
  if (k < 0 || k >= state.keys.length) return;
  edit(() => {
    state.keys.splice(k, 1); resetEdits();
    if (state.keys.length < 2) state.closed = false;
  });
}

function moveKey(k, d) {
  const j = k + d;
  if (j < 0 || j >= state.keys.length) return;
  edit(() => { [state.keys[k], state.keys[j]] = [state.keys[j], state.keys[k]]; resetEdits(); });
}

function toggleExclude(i) {
  if (state.keys.includes(i)) { flash(`frame ${i} is a key; remove the key first`); return; }
  edit(() => {
    const s = new Set(state.excluded);
    if (s.has(i)) s.delete(i); else s.add(i);
    state.excluded = [...s].sort((a, b) => a - b);
    resetEdits();
  });
}

// swaps and synthesized in-betweens are tied to positions in the path: a new path drops them
function resetEdits() { state.swaps = {}; state.synth = {}; }

function flash(msg) { $("seqinfo").textContent = msg; }

// ---- refresh: ask the server for the sequence of the state, redraw everything ------------
async function refresh() {
  const id = ++refreshId;
  saveHash();
  renderKeys();
  renderModes();
  let res;
  try {
    res = await api("/api/sequence", { state: serverState() });
  } catch (e) {
    if (id !== refreshId) return;
    flash(e.message);
    res = { frames: [], steps: [], closed: false };
  }
  if (id !== refreshId) return;
  const fetched = performance.now();
  seq = res;
  selStep = -1;
  renderSequence();
  $("inbetweens").dataset.ms = (performance.now() - editAt).toFixed(1);
  $("inbetweens").dataset.fetchMs = (fetched - editAt).toFixed(1);
  if (state.mode === "subseq") renderSubsequences();
}

function serverState() {
  const s = {};
  for (const f of EDIT_FIELDS) s[f] = state[f];
  return s;
}

let treeKey = null;
async function refreshTree() {
  const key = state.style + "|" + state.excluded.join(",");
  if (key === treeKey) return;
  treeKey = key;
  const lay = await api(`/api/layout?style=${encodeURIComponent(state.style)}`);
  let edges = lay.edges;
  if (state.style === "mst" && state.excluded.length) {
    edges = (await api("/api/tree", { excluded: state.excluded })).edges;
  }
  map.setPoints(lay.points, edges);
}

function renderKeys() {
  const el = $("keys");
  el.dataset.keys = state.keys.join(",");
  el.innerHTML = "";
  state.keys.forEach((i, k) => {
    const chip = document.createElement("span");
    chip.className = "key" + (k === selKey ? " sel" : "");
    chip.dataset.index = i;
    chip.innerHTML = `<span class="badge">${k + 1}</span><span title="${esc(labels[i])}">${i}</span>`
      + `<button data-a="l" title="move earlier">&#8249;</button><button data-a="r" title="move later">&#8250;</button>`
      + `<button data-a="x" data-testid="remove-key" title="remove (Del)">&#215;</button>`;
    chip.addEventListener("click", (e) => {
      const a = e.target.dataset.a;
      if (a === "l") moveKey(k, -1); else if (a === "r") moveKey(k, 1); else if (a === "x") removeKey(k);
      else { selKey = selKey === k ? -1 : k; renderKeys(); }
    });
    el.appendChild(chip);
  });
  if (state.closed && state.keys.length > 1) {
    const c = document.createElement("span");
    c.className = "muted"; c.textContent = `→ back to ${state.keys[0]}`;
    el.appendChild(c);
  }
  $("closeloop").classList.toggle("on", state.closed);
  map.keys = state.mode === "keys" ? state.keys : []; // badges belong to the key-frame path
  map.setExcluded(state.excluded);
  map.redraw();
  const ex = $("exclinfo");
  ex.dataset.excluded = state.excluded.join(",");
  ex.textContent = state.excluded.length ? `${state.excluded.length} frame${state.excluded.length > 1 ? "s" : ""} excluded` : "no frames excluded";
  $("exlist").innerHTML = state.excluded.map((i) => `<span data-i="${i}" title="include again">${i} &#215;</span>`).join("");
  refreshTree().catch((e) => flash(e.message));
}

function renderModes() {
  for (const m of ["keys", "order", "loop", "subseq"]) $(`mode-${m}`).classList.toggle("on", state.mode === m);
  $("loopbuilder").hidden = state.mode !== "loop";
  $("subpanel").hidden = state.mode !== "subseq";
  const titles = { keys: "In-betweens", order: "Hamiltonian order", loop: "Loop", subseq: "Sub-sequence" };
  $("seqtitle").textContent = titles[state.mode];
  const nAct = info.n - state.excluded.length;
  $("looplen").max = nAct;
  $("looplen").value = state.loop_length ?? nAct;
  $("looplenv").textContent = `${state.loop_length ?? nAct} frames`;
  $("loopframe").max = info.n - 1;
  $("loopframe").value = state.loop_frame ?? (state.keys[0] ?? 0);
  $("sublen").max = nAct;
  $("sublen").value = state.sub_length;
  $("sublenv").textContent = `${state.sub_length} frames`;
}

function esc(s) {
  return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
}

function thumbStyle(i, h) {
  const a = info.atlas, per = a.per_atlas, j = i % per;
  const k = Math.floor(i / per), s = h / a.cell_h;
  const rows = Math.ceil(Math.min(per, info.n - k * per) / a.cols);
  const aw = (rows > 1 ? a.cols : Math.min(per, info.n - k * per)) * a.cell_w;
  return `width:${a.cell_w * s}px;height:${h}px;background-image:url(/api/atlas/${k}.jpg);`
    + `background-size:${aw * s}px ${rows * a.cell_h * s}px;`
    + `background-position:${-(j % a.cols) * a.cell_w * s}px ${-Math.floor(j / a.cols) * a.cell_h * s}px`;
}

function stepColor(d) {
  const t = d / (info.step_scale * 2);
  const hue = 120 * (1 - Math.max(0, Math.min(1, t)));
  return `hsl(${hue},75%,45%)`;
}

let items = [], itemOf = [];

function buildItems() {
  // the frames the player shows: the path, with any synthesized in-betweens inserted
  const groups = new Map((seq.synthetic || []).map((g) => [g.after, g]));
  items = []; itemOf = [];
  seq.frames.forEach((i, p) => {
    itemOf.push(items.length);
    items.push(i);
    const g = groups.get(p);
    if (g) for (let k = 0; k < g.count; k++) items.push(`s:${g.a}:${g.b}:${g.count}:${k}`);
  });
}

function renderSequence() {
  const f = seq.frames;
  buildItems();
  const keys = new Set(state.mode === "keys" ? state.keys : []);
  const swapped = new Set(Object.keys(state.mode === "keys" ? state.swaps : {}).map(Number));
  const strip = $("inbetweens");
  strip.dataset.frames = f.join(",");
  const realPos = new Map(itemOf.map((q, p) => [q, p]));
  strip.innerHTML = items.map((i, q) => {
    if (typeof i === "string") {
      return `<img class="thumb syn" data-p="${q}" title="synthesized" src="${frameUrl(i)}" style="height:40px">`;
    }
    const p = realPos.get(q);
    return `<div class="thumb${keys.has(i) ? " key" : ""}${swapped.has(p) ? " swapped" : ""}" data-p="${q}" title="${p}: ${esc(labels[i])}" style="${thumbStyle(i, 40)}"></div>`;
  }).join("");
  const total = seq.steps.reduce((a, b) => a + b, 0);
  let txt = `${f.length} frames` + (seq.steps.length ? `, cost ${total.toFixed(3)}` : "");
  if (state.mode === "keys" && seq.counts && seq.counts.length) txt += `, in-betweens per segment ${seq.counts.join("/")}`;
  $("seqinfo").textContent = txt;
  // steps strip
  const steps = seq.steps;
  let worst = -1;
  steps.forEach((d, j) => { if (worst < 0 || d > steps[worst]) worst = j; });
  const st = $("steps");
  st.dataset.worst = String(worst);
  const synthAt = new Set((seq.synthetic || []).map((g) => g.after));
  st.innerHTML = steps.map((d, j) =>
    `<div data-j="${j}" class="${j === worst ? "worst" : ""}${j === selStep ? " sel" : ""}${synthAt.has(j) ? " synth" : ""}" style="background:${stepColor(d)}" title="${f[j]} → ${f[(j + 1) % f.length]}: ${d.toFixed(4)}${synthAt.has(j) ? " (synthesized in-betweens)" : ""}"></div>`).join("");
  // key marks on the scrub bar
  const km = $("keymarks");
  const mi = items.length;
  km.innerHTML = items.map((i, q) => (keys.has(i) ? `<span style="left:${mi > 1 ? (100 * q) / (mi - 1) : 0}%"></span>` : "")).join("");
  $("scrub").max = Math.max(0, mi - 1);
  player.setSequence(items, !!seq.closed);
  map.path = state.mode === "keys" && state.keys.length < 2 ? [] : f;
  map.closed = !!seq.closed;
  map.redraw();
  renderFix(worst);
  if (state.mode === "loop") $("seam").textContent = seq.seam !== undefined ? `seam ${seq.seam.toFixed(4)}` : "";
}

async function renderFix(worst) {
  const el = $("fix");
  const j = selStep >= 0 ? selStep : worst;
  const f = seq.frames, m = f.length;
  if (j < 0 || m < 2) { el.innerHTML = ""; return; }
  const a = f[j], b = f[(j + 1) % m];
  let html = `<b>${selStep >= 0 ? "Step" : "Worst step"}</b> ${j} → ${j + 1}: frame ${a} → ${b}, `
    + `LPIPS ${seq.steps[j].toFixed(4)}`;
  // the in-between to swap: the later end unless it is a key, else the earlier one
  const keys = new Set(state.keys);
  let pos = -1;
  const bp = (j + 1) % m;
  if (state.mode === "keys") {
    if (!keys.has(f[bp])) pos = bp; else if (!keys.has(f[j])) pos = j;
  }
  const synthHere = state.synth[j] !== undefined;
  if (info.synthesis && state.mode === "keys") {
    html += ` <button id="synth" data-testid="synthesize">${synthHere ? "remove the synthesized in-betweens" : "synthesize 3 in-betweens here"}</button>`;
  }
  el.innerHTML = html + `<div class="alts" id="alts"></div>`;
  if (info.synthesis && state.mode === "keys") {
    $("synth").onclick = () => edit(() => {
      const sy = { ...state.synth };
      if (synthHere) delete sy[j]; else sy[j] = 3;
      state.synth = sy;
    });
  }
  if (pos < 0) return;
  const myId = refreshId;
  let alts;
  try {
    alts = (await api("/api/alternatives", {
      frames: f, position: pos, closed: !!seq.closed, k: 5, excluded: state.excluded,
    })).alternatives;
  } catch (e) { return; }
  if (myId !== refreshId) return;
  const box = $("alts");
  if (!box) return;
  box.innerHTML = `<span class="muted">swap frame ${f[pos]} (position ${pos}) for:</span>` + alts.map((x) =>
    `<div class="alt" data-i="${x.index}" data-testid="alternative" title="${esc(labels[x.index])}"><div class="thumb" style="${thumbStyle(x.index, 36)}"></div>${x.index}<br>${x.cost.toFixed(3)}</div>`).join("");
  box.querySelectorAll(".alt").forEach((d) => d.addEventListener("click", () => {
    const i = Number(d.dataset.i);
    edit(() => { state.swaps = { ...state.swaps, [pos]: i }; });
  }));
}

async function renderSubsequences() {
  const el = $("sublist");
  try {
    const r = await api("/api/subsequences", { length: state.sub_length, count: 10, excluded: state.excluded });
    el.innerHTML = r.subsequences.map((s, k) =>
      `<div data-k="${k}" class="${k === state.sub_pick ? "on" : ""}">${k + 1}. frames ${s.frames[0]}…${s.frames[s.frames.length - 1]}, cost ${s.cost.toFixed(3)}</div>`).join("");
    el.querySelectorAll("div").forEach((d) => d.addEventListener("click", () => {
      edit(() => { state.sub_pick = Number(d.dataset.k); });
    }));
  } catch (e) { el.textContent = e.message; }
}

function onPlayer(p) {
  $("play").textContent = p.playing ? "pause" : "play";
  $("scrub").value = p.pos;
  $("pos").textContent = p.seq.length ? `${p.pos + 1}/${p.seq.length} · frame ${p.seq[p.pos]}` : "";
  const cur = p.seq.length && typeof p.seq[p.pos] === "number" ? p.seq[p.pos] : -1;
  if (map && map.current !== cur) { map.current = cur; map.redraw(); }
  const strip = $("inbetweens");
  const prev = strip.querySelector(".thumb.cur");
  if (prev) prev.classList.remove("cur");
  const el = strip.querySelector(`.thumb[data-p="${p.pos}"]`);
  if (el) el.classList.add("cur");
}

function colors() {
  const n = info.n;
  if (state.color === "outlier" && info.outlier_scores.length) {
    const s = info.outlier_scores, lo = Math.min(...s), hi = Math.max(...s);
    return s.map((x) => colorRamp((x - lo) / (hi - lo || 1)));
  }
  return Array.from({ length: n }, (_, i) => colorRamp(n > 1 ? i / (n - 1) : 0));
}

async function hover(i, mx, my) {
  hovered = i;
  const pv = $("preview");
  pv.hidden = false;
  $("preview-img").src = `/api/frame/${i}.png`;
  $("preview-label").textContent = `${i}: ${labels[i]}` + (state.excluded.includes(i) ? " (excluded)" : "")
    + (info.outliers.includes(i) ? " (outlier)" : "");
  const wrap = $("mapwrap").getBoundingClientRect();
  pv.style.left = `${Math.min(mx + 16, wrap.width - 270)}px`;
  pv.style.top = `${Math.min(my + 16, Math.max(0, wrap.height - 260))}px`;
  const last = state.keys[state.keys.length - 1];
  const d = $("preview-dist");
  if (last === undefined) { d.textContent = "no key yet"; return; }
  const row = await distRow(last);
  const metric = (info.settings.metric || "lpips").toUpperCase();
  if (hovered === i) d.textContent = `${metric} to key ${state.keys.length} (frame ${last}): ${row[i].toFixed(4)}`;
}

function wire() {
  $("play").onclick = () => player.toggle();
  $("back").onclick = () => { player.pause(); player.step(-1); };
  $("fwd").onclick = () => { player.pause(); player.step(1); };
  $("scrub").oninput = (e) => { player.pause(); player.seek(Number(e.target.value)); };
  $("fps").onchange = (e) => {
    state.fps = Math.max(1, Math.min(60, Number(e.target.value) || 12));
    player.fps = state.fps; saveHash();
  };
  $("playback").onchange = (e) => { state.playback = e.target.value; player.mode = state.playback; saveHash(); };
  $("onion").oninput = (e) => { state.onion = Number(e.target.value); player.onion = state.onion; player.draw(); saveHash(); };
  $("fit").onclick = () => map.fit();
  $("style").onchange = (e) => { state.style = e.target.value; treeKey = null; saveHash(); refreshTree().catch((x) => flash(x.message)); };
  $("color").onchange = (e) => { state.color = e.target.value; map.setColors(colors()); saveHash(); };
  $("closeloop").onclick = () => {
    if (state.keys.length < 2) { flash("closing the loop needs two keys"); return; }
    edit(() => { state.closed = !state.closed; resetEdits(); state.mode = "keys"; });
  };
  $("clearkeys").onclick = () => edit(() => { state.keys = []; state.closed = false; resetEdits(); });
  $("undo").onclick = undo;
  $("redo").onclick = redo;
  for (const m of ["keys", "order", "loop", "subseq"]) {
    $(`mode-${m}`).onclick = () => {
      if (m === "order" || m === "loop") flash("solving...");
      edit(() => { state.mode = m; });
    };
  }
  $("loopframe").onchange = (e) => edit(() => { state.loop_frame = Number(e.target.value); });
  $("looplen").oninput = (e) => { $("looplenv").textContent = `${e.target.value} frames`; };
  $("looplen").onchange = (e) => edit(() => { state.loop_length = Number(e.target.value); });
  $("sublen").oninput = (e) => { $("sublenv").textContent = `${e.target.value} frames`; };
  $("sublen").onchange = (e) => edit(() => { state.sub_length = Number(e.target.value); state.sub_pick = 0; });
  $("exoutliers").onclick = () => edit(() => {
    const s = new Set(state.excluded);
    for (const i of info.outliers) if (!state.keys.includes(i)) s.add(i);
    state.excluded = [...s].sort((a, b) => a - b); resetEdits();
  });
  $("inall").onclick = () => edit(() => { state.excluded = []; resetEdits(); });
  $("exlist").onclick = (e) => { const i = e.target.dataset.i; if (i !== undefined) toggleExclude(Number(i)); };
  $("steps").onclick = (e) => {
    const j = e.target.dataset.j;
    if (j === undefined) return;
    selStep = Number(j);
    player.pause(); player.seek(itemOf[selStep] ?? selStep);
    $("steps").querySelectorAll("div").forEach((d) => d.classList.toggle("sel", Number(d.dataset.j) === selStep));
    renderFix(Number($("steps").dataset.worst));
  };
  $("inbetweens").onclick = (e) => {
    const p = e.target.dataset.p;
    if (p !== undefined) { player.pause(); player.seek(Number(p)); }
  };
  $("export").onclick = async () => {
    const out = $("exportresult");
    out.textContent = "exporting...";
    out.dataset.files = "";
    try {
      const r = await api("/api/export", { state: serverState(), format: $("format").value, fps: state.fps });
      out.dataset.files = r.files.join("\n");
      out.textContent = `wrote ${r.frames} frames: ` + r.files.map((p) => p.split(/[\\/]/).pop()).join(", ");
    } catch (e) { out.textContent = `export failed: ${e.message}`; }
  };
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT" && e.target.type !== "range") return;
    if (e.target.tagName === "SELECT") return;
    const k = e.key;
    if ((e.ctrlKey || e.metaKey) && (k === "z" || k === "Z")) {
      e.preventDefault(); if (e.shiftKey) redo(); else undo(); return;
    }
    if ((e.ctrlKey || e.metaKey) && (k === "y" || k === "Y")) { e.preventDefault(); redo(); return; }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (k === " ") { e.preventDefault(); player.toggle(); }
    else if (k === "ArrowLeft") { e.preventDefault(); player.pause(); player.step(-1); }
    else if (k === "ArrowRight") { e.preventDefault(); player.pause(); player.step(1); }
    else if (k === "k" || k === "K") {
      const cur = player.seq[player.pos];
      if (typeof cur === "number") addKey(cur);
    }
    else if (k === "Delete" || k === "Backspace") {
      e.preventDefault();
      removeKey(selKey >= 0 ? selKey : state.keys.length - 1); selKey = -1;
    }
    else if ((k === "x" || k === "X") && hovered >= 0) toggleExclude(hovered);
    else if (k === "f" || k === "F") map.fit();
  });
}

async function waitReady() {
  for (;;) {
    const s = await api("/api/status");
    if (s.error) { $("overlay-text").textContent = `error: ${s.error}`; throw new Error(s.error); }
    if (s.ready) return;
    const bar = s.progress[0];
    $("overlay-text").textContent = `preparing ${s.n} frames: ${s.stage}` + (bar ? ` (${bar.desc} ${bar.n}/${bar.total})` : "");
    if (bar) { $("overlay-bar").max = bar.total; $("overlay-bar").value = bar.n; }
    await new Promise((r) => setTimeout(r, 400));
  }
}

async function main() {
  await waitReady();
  info = await api("/api/info");
  labels = (await api("/api/frames")).frames.map((f) => f.label);
  $("source").textContent = `${info.source} · ${info.n} frames · ${info.settings.metric || ""}`;
  $("style").innerHTML = info.styles.map((s) => `<option value="${s}">${s}</option>`).join("");
  state = location.hash.length > 1 ? decodeHash(location.hash) : { ...DEFAULTS, ...info.state };
  for (const k of Object.keys(DEFAULTS)) if (state[k] === undefined) state[k] = DEFAULTS[k];
  if (!info.styles.includes(state.style)) state.style = "mst";
  $("style").value = state.style; $("color").value = state.color;
  $("fps").value = state.fps; $("playback").value = state.playback; $("onion").value = state.onion;
  const atlases = [];
  for (let k = 0; k < info.atlas.count; k++) {
    const im = new Image();
    im.src = `/api/atlas/${k}.jpg`;
    im.onload = () => map.invalidate();
    atlases.push(im);
  }
  map = new MapView($("map"), info.atlas, atlases, {
    click: (i, e) => {
      if (e.shiftKey) toggleExclude(i);
      else if (e.altKey) edit(() => { state.loop_frame = i; state.mode = "loop"; }); // loop from here
      else addKey(i);
    },
    hover,
    leave: () => { hovered = -1; $("preview").hidden = true; },
  });
  map.outliers = new Set(info.outliers);
  map.setColors(colors());
  player = new Player($("player"), [info.width, info.height], image, onPlayer);
  player.fps = state.fps; player.mode = state.playback; player.onion = state.onion;
  wire();
  await refreshTree();
  $("overlay").hidden = true;
  await refresh();
  document.body.dataset.ready = "1";
}

main().catch((e) => { $("overlay").hidden = false; $("overlay-text").textContent = `error: ${e.message}`; });
