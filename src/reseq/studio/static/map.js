// The MST map: thumbnails from JPEG atlases at the layout's positions, tree edges, the path of
// the current sequence, numbered key badges; zoom (wheel), pan (drag), fit; hover and click.
// Initial (unzoomed) view: point i is drawn at (x * width, y * height) of the canvas box.

export function colorRamp(t) {
  // viridis-like ramp, t in [0, 1]
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  t = Math.max(0, Math.min(1, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(t));
  const f = t - i;
  const c = stops[i].map((v, k) => Math.round(v + f * (stops[i + 1][k] - v)));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

export class MapView {
  constructor(canvas, atlasInfo, atlases, handlers) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.atlas = atlasInfo;
    this.atlases = atlases; // array of HTMLImageElement
    this.h = handlers; // {click(i, ev), hover(i, ev), leave()}
    this.points = []; // [{x, y}] in [0,1]
    this.edges = [];
    this.path = [];
    this.closed = false;
    this.keys = [];
    this.excluded = new Set();
    this.outliers = new Set();
    this.colors = [];
    this.current = -1;
    this.hovered = -1;
    this.view = { z: 1, tx: 0, ty: 0 };
    this.pending = false;
    this.baseDirty = true;
    this.excludedKey = "";
    this.drag = null;
    const ro = new ResizeObserver(() => this.resize());
    ro.observe(canvas);
    this.resize();
    canvas.addEventListener("wheel", (e) => this.onWheel(e), { passive: false });
    canvas.addEventListener("mousedown", (e) => this.onDown(e));
    window.addEventListener("mousemove", (e) => this.onMove(e));
    window.addEventListener("mouseup", (e) => this.onUp(e));
    canvas.addEventListener("mouseleave", () => { this.hovered = -1; this.h.leave(); this.redraw(); });
  }

  resize() {
    const r = this.canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    this.w = r.width; this.hgt = r.height;
    this.canvas.width = Math.max(1, Math.round(r.width * dpr));
    this.canvas.height = Math.max(1, Math.round(r.height * dpr));
    this.dpr = dpr;
    this.invalidate();
  }

  setPoints(points, edges) { this.points = points; this.edges = edges; this.invalidate(); }
  fit() { this.view = { z: 1, tx: 0, ty: 0 }; this.invalidate(); }

  setExcluded(list) {
    const key = list.join(",");
    if (key === this.excludedKey) return;
    this.excludedKey = key;
    this.excluded = new Set(list);
    this.invalidate();
  }

  setColors(colors) { this.colors = colors; this.invalidate(); }

  // the thumbnails, edges and rings are drawn into a cached layer, redrawn only when the view
  // or the collection changes; keys, the path and the hover are drawn over it on every frame
  invalidate() { this.baseDirty = true; this.redraw(); }

  screen(i) {
    const p = this.points[i];
    return [p.x * this.w * this.view.z + this.view.tx, p.y * this.hgt * this.view.z + this.view.ty];
  }

  thumbSize() {
    const n = Math.max(1, this.points.length);
    const base = Math.max(8, Math.min(56, 0.8 * Math.sqrt((this.w * this.hgt) / n)));
    return base * Math.sqrt(this.view.z);
  }

  hit(mx, my) {
    const s = this.thumbSize();
    const r = Math.max(6, s / 2);
    let best = -1, bd = r * r;
    for (let i = 0; i < this.points.length; i++) {
      const [x, y] = this.screen(i);
      const d = (x - mx) ** 2 + (y - my) ** 2;
      if (d <= bd) { bd = d; best = i; }
    }
    return best;
  }

  local(e) {
    const r = this.canvas.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  }

  onWheel(e) {
    e.preventDefault();
    const [mx, my] = this.local(e);
    const f = Math.exp(-e.deltaY * 0.0015);
    const z = Math.max(0.2, Math.min(60, this.view.z * f));
    const k = z / this.view.z;
    this.view.tx = mx - (mx - this.view.tx) * k;
    this.view.ty = my - (my - this.view.ty) * k;
    this.view.z = z;
    this.invalidate();
  }

  onDown(e) {
    if (e.button !== 0) return;
    const [mx, my] = this.local(e);
    this.drag = { x: mx, y: my, tx: this.view.tx, ty: this.view.ty, moved: false };
  }

  onMove(e) {
    const [mx, my] = this.local(e);
    if (this.drag) {
      const dx = mx - this.drag.x, dy = my - this.drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 4) this.drag.moved = true;
      if (this.drag.moved) {
        this.view.tx = this.drag.tx + dx; this.view.ty = this.drag.ty + dy;
        this.invalidate();
        return;
      }
    }
    if (e.target !== this.canvas) return;
    const i = this.hit(mx, my);
    if (i !== this.hovered) {
      this.hovered = i;
      this.redraw();
    }
    if (i >= 0) this.h.hover(i, mx, my); else this.h.leave();
  }

  onUp(e) {
    const d = this.drag;
    this.drag = null;
    if (!d || d.moved || e.target !== this.canvas) return;
    const [mx, my] = this.local(e);
    const i = this.hit(mx, my);
    if (i >= 0) this.h.click(i, e);
  }

  redraw() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.draw(); });
  }

  drawBase() {
    if (!this.base) this.base = document.createElement("canvas");
    const base = this.base;
    base.width = this.canvas.width; base.height = this.canvas.height;
    const ctx = base.getContext("2d"), n = this.points.length;
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.clearRect(0, 0, this.w, this.hgt);
    const xy = new Float64Array(2 * n);
    for (let i = 0; i < n; i++) {
      const [x, y] = this.screen(i);
      xy[2 * i] = x; xy[2 * i + 1] = y;
    }
    this.xy = xy;
    // tree edges
    ctx.strokeStyle = "rgba(120,120,120,0.55)";
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (const [a, b] of this.edges) {
      ctx.moveTo(xy[2 * a], xy[2 * a + 1]); ctx.lineTo(xy[2 * b], xy[2 * b + 1]);
    }
    ctx.stroke();
    const s = this.thumbSize();
    const dots = s < 12;
    const { cell_w: cw, cell_h: ch, cols, per_atlas: per } = this.atlas;
    const tw = cw >= ch ? s : s * cw / ch, th = cw >= ch ? s * ch / cw : s;
    const margin = s;
    for (let i = 0; i < n; i++) {
      const x = xy[2 * i], y = xy[2 * i + 1];
      if (x < -margin || y < -margin || x > this.w + margin || y > this.hgt + margin) continue;
      const ex = this.excluded.has(i);
      ctx.globalAlpha = ex ? 0.25 : 1;
      if (dots) {
        ctx.fillStyle = this.colors[i] || "#555";
        ctx.beginPath(); ctx.arc(x, y, Math.max(2, s / 3), 0, 2 * Math.PI); ctx.fill();
      } else {
        const img = this.atlases[Math.floor(i / per)];
        const j = i % per;
        if (img && img.complete && img.naturalWidth) {
          ctx.drawImage(img, (j % cols) * cw, Math.floor(j / cols) * ch, cw, ch,
            x - tw / 2, y - th / 2, tw, th);
        } else {
          ctx.fillStyle = "#ddd"; ctx.fillRect(x - tw / 2, y - th / 2, tw, th);
        }
        ctx.strokeStyle = this.colors[i] || "#555";
        ctx.lineWidth = 2;
        ctx.strokeRect(x - tw / 2, y - th / 2, tw, th);
      }
      if (ex) {
        ctx.globalAlpha = 0.9; ctx.strokeStyle = "#555"; ctx.lineWidth = 1.5;
        const r = Math.max(4, s / 3);
        ctx.beginPath(); ctx.moveTo(x - r, y - r); ctx.lineTo(x + r, y + r);
        ctx.moveTo(x + r, y - r); ctx.lineTo(x - r, y + r); ctx.stroke();
      }
      ctx.globalAlpha = 1;
      if (this.outliers.has(i)) {
        ctx.strokeStyle = "#d11"; ctx.lineWidth = 2;
        ctx.beginPath(); ctx.arc(x, y, Math.max(6, s * 0.62), 0, 2 * Math.PI); ctx.stroke();
      }
    }
  }

  draw() {
    const ctx = this.ctx, n = this.points.length;
    if (this.baseDirty || !this.xy || this.xy.length !== 2 * n) {
      this.drawBase();
      this.baseDirty = false;
    }
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    if (!n) return;
    ctx.drawImage(this.base, 0, 0);
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    const xy = this.xy, s = this.thumbSize(), dots = s < 12;
    const { cell_w: cw, cell_h: ch } = this.atlas;
    const tw = cw >= ch ? s : s * cw / ch, th = cw >= ch ? s * ch / cw : s;
    // path of the current sequence
    if (this.path.length > 1) {
      ctx.strokeStyle = "rgba(230,120,0,0.9)";
      ctx.lineWidth = 3;
      ctx.beginPath();
      this.path.forEach((i, k) => {
        if (k === 0) ctx.moveTo(xy[2 * i], xy[2 * i + 1]); else ctx.lineTo(xy[2 * i], xy[2 * i + 1]);
      });
      if (this.closed) ctx.closePath();
      ctx.stroke();
    }
    // current frame of the player, hovered frame
    for (const [i, col] of [[this.current, "#e08000"], [this.hovered, "#2d6cdf"]]) {
      if (i < 0 || i >= n) continue;
      ctx.strokeStyle = col; ctx.lineWidth = 3;
      const r = Math.max(8, s / 2 + 3);
      ctx.strokeRect(xy[2 * i] - r, xy[2 * i + 1] - r, 2 * r, 2 * r);
    }
    // numbered key badges
    ctx.font = "bold 11px 'DejaVu Sans', sans-serif";
    ctx.textAlign = "center"; ctx.textBaseline = "middle";
    this.keys.forEach((i, k) => {
      const x = xy[2 * i] - (dots ? 0 : tw / 2), y = xy[2 * i + 1] - (dots ? 0 : th / 2);
      ctx.fillStyle = "#2d6cdf";
      ctx.beginPath(); ctx.arc(x, y, 8, 0, 2 * Math.PI); ctx.fill();
      ctx.fillStyle = "#fff"; ctx.fillText(String(k + 1), x, y + 0.5);
    });
    this.canvas.dataset.drawnPoints = String(n);
    this.canvas.dispatchEvent(new CustomEvent("drawn", { detail: { points: n } }));
  }
}
