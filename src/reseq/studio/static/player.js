// The flipbook player: a canvas showing the current frame of a sequence, onion skin (the
// previous and next frames at an adjustable opacity, wrapping around in loops), play/pause at
// an fps, loop or ping-pong, step +-1, a scrub bar with the keys marked.

export class Player {
  constructor(canvas, frameSize, image, onChange) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.image = image; // i -> HTMLImageElement (cached)
    this.onChange = onChange;
    this.seq = [];
    this.closed = false;
    this.pos = 0;
    this.dir = 1;
    this.fps = 12;
    this.mode = "loop";
    this.onion = 0;
    this.timer = null;
    const [w, h] = frameSize;
    const scale = Math.min(1, 420 / w, 300 / h) * Math.max(1, Math.min(3, 240 / h));
    canvas.width = Math.round(w * scale);
    canvas.height = Math.round(h * scale);
  }

  get playing() { return this.timer !== null; }

  setSequence(seq, closed) {
    this.seq = seq.slice();
    this.closed = closed;
    if (this.pos >= this.seq.length) this.pos = 0;
    this.draw();
  }

  play() {
    if (this.playing || this.seq.length < 2) return;
    const tick = () => {
      this.timer = setTimeout(tick, 1000 / this.fps);
      this.advance();
    };
    this.timer = setTimeout(tick, 1000 / this.fps);
    this.onChange(this);
  }

  pause() {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.onChange(this);
  }

  toggle() { if (this.playing) this.pause(); else this.play(); }

  advance() {
    const m = this.seq.length;
    if (m < 2) return;
    if (this.mode === "pingpong") {
      if (this.pos + this.dir >= m || this.pos + this.dir < 0) this.dir = -this.dir;
      this.pos += this.dir;
    } else {
      this.pos = (this.pos + 1) % m;
    }
    this.draw();
  }

  step(d) {
    const m = this.seq.length;
    if (!m) return;
    this.pos = (this.pos + d + m) % m;
    this.draw();
  }

  seek(p) {
    if (!this.seq.length) return;
    this.pos = Math.max(0, Math.min(this.seq.length - 1, p));
    this.draw();
  }

  neighbour(d) {
    const m = this.seq.length, p = this.pos + d;
    if (p >= 0 && p < m) return this.seq[p];
    if (this.closed || this.mode === "loop") return this.seq[(p + m) % m];
    return null;
  }

  preload() {
    // the next few frames only: a long path must not queue a hundred requests ahead of the
    // page's own (the browser opens six connections per host)
    const m = this.seq.length;
    for (let d = 1; d <= Math.min(8, m - 1); d++) this.image(this.seq[(this.pos + d) % m]);
  }

  draw() {
    this.preload();
    const ctx = this.ctx, W = this.canvas.width, H = this.canvas.height;
    ctx.globalAlpha = 1;
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, W, H);
    const m = this.seq.length;
    this.canvas.dataset.position = String(this.pos);
    this.canvas.dataset.frame = m ? String(this.seq[this.pos]) : "";
    if (m) {
      const cur = this.image(this.seq[this.pos]);
      const draw = (img, a) => {
        if (img && img.complete && img.naturalWidth) {
          ctx.globalAlpha = a; ctx.drawImage(img, 0, 0, W, H);
        }
      };
      draw(cur, 1);
      if (this.onion > 0 && m > 1) {
        for (const d of [-1, 1]) {
          const j = this.neighbour(d);
          if (j !== null) draw(this.image(j), this.onion * 0.6);
        }
      }
      ctx.globalAlpha = 1;
      if (!(cur.complete && cur.naturalWidth)) cur.addEventListener("load", () => this.draw(), { once: true });
    }
    this.onChange(this);
  }
}
