/**
 * One rendered annotator: wires the model (synced traits + custom messages) to the DOM, the
 * canvas, pointer and keyboard input. Frames and masks are cached here and fetched lazily.
 */
import type { AnyModel } from "@anywidget/types";
import { LruCache } from "./cache";
import { decodeUint8Map } from "./codecs";
import { buildControls, type Controls } from "./controls";
import { bindInput } from "./input";
import { Layers, mapKey } from "./layers";
import { MaskStore, type Ids } from "./masks";
import { bindControls, paintTimeline, renderLists, syncControls } from "./panel";
import { bytesOf, encodeRun, parseIncoming, MAP_KINDS, type IncomingMessage, type MapKind,
  type OutgoingMessage } from "./protocol";
import { drawScene, type Layer } from "./render";
import { StrokeBuilder, StrokeStore } from "./strokes";
import type { Traits } from "./traits";
import { Viewport } from "./viewport";

export type ImageDecoder = (jpeg: Uint8Array) => Promise<CanvasImageSource & { close?: () => void }>;

export const defaultDecoder: ImageDecoder = (jpeg) =>
  createImageBitmap(new Blob([jpeg as BlobPart], { type: "image/jpeg" }));

/** Timings for the latency benchmark and the end-to-end test (performance.now() ms). */
export interface Stats {
  runSentAt: number;
  interactiveDrawnAt: number;
  pendingMaskTimes: number[];
  roundFinishedAt: number;
  framesReceived: number;
  draws: number;
  /** Milliseconds spent decoding each streamed mask and drawing each canvas frame this round. */
  decodeMs: number[];
  drawMs: number[];
  lastError: string;
}

const PREFETCH = 6;

export class AnnotatorView {
  readonly ui: Controls;
  readonly strokes = new StrokeStore();
  readonly masks = new MaskStore();
  readonly stats: Stats = {
    runSentAt: 0, interactiveDrawnAt: 0, pendingMaskTimes: [], roundFinishedAt: 0, framesReceived: 0, draws: 0,
    decodeMs: [], drawMs: [], lastError: "",
  };
  readonly view: Viewport;
  frame = 0;
  builder: StrokeBuilder | null = null;
  cursor: { x: number; y: number } | null = null;
  private frames: LruCache<number, CanvasImageSource & { close?: () => void }>;
  private frameRequests = new Set<number>();
  private layers = new Layers();
  private drawPending = false;
  private playTimer: ReturnType<typeof setInterval> | null = null;
  private syncTimer: ReturnType<typeof setTimeout> | null = null;
  private hintTimer: ReturnType<typeof setTimeout> | null = null;
  private runRequested = false;
  private cssWidth = 1;
  private cssHeight = 1;
  private selectNewObject = false;
  private disposers: (() => void)[] = [];
  private timelinePending = false;

  constructor(readonly model: AnyModel<Traits>, el: HTMLElement, private readonly decode: ImageDecoder = defaultDecoder) {
    this.frames = new LruCache(240, (bitmap) => bitmap.close?.());
    this.ui = buildControls(el);
    this.view = new Viewport(this.get("width"), this.get("height"), 640, 360);
    this.frame = this.clampFrame(this.get("frame_index"));
    this.masks.setVersion(this.get("mask_version"));
    this.bindModel();
    this.disposers.push(bindControls(this), bindInput(this));
    this.renderLists();
    this.syncControls();
    this.resize();
    this.requestFrame(this.frame);
  }

  get<K extends keyof Traits>(key: K): Traits[K] {
    return this.model.get(key);
  }

  set<K extends keyof Traits>(key: K, value: Traits[K]): void {
    this.model.set(key, value);
    this.model.save_changes();
  }

  send(message: OutgoingMessage, buffers?: ArrayBuffer[]): void {
    this.model.send(message, undefined, buffers);
  }

  dispose(): void {
    this.stop();
    for (const d of this.disposers) d();
    if (this.syncTimer !== null) clearTimeout(this.syncTimer);
    if (this.hintTimer !== null) clearTimeout(this.hintTimer);
    this.frames.clear();
  }

  // ------------------------------------------------------------------ model wiring
  private bindModel(): void {
    const on = (event: string, handler: () => void): void => {
      this.model.on(event, handler);
      this.disposers.push(() => this.model.off(event as never, handler));
    };
    const onMessage = (msg: unknown, buffers: DataView[]): void => this.onMessage(msg, buffers);
    this.model.on("msg:custom", onMessage);
    this.disposers.push(() => this.model.off("msg:custom", onMessage));
    on("change:frame_index", () => {
      const t = this.clampFrame(this.get("frame_index"));
      if (t !== this.frame && this.syncTimer === null) this.setFrame(t, false);
    });
    on("change:mask_version", () => {
      if (this.masks.setVersion(this.get("mask_version"))) {
        this.layers.clearMaps();
      }
      this.invalidate();
    });
    on("change:objects", () => this.onObjectsChanged());
    for (const key of ["active_object", "overlay_opacity", "overlay_mode", "map_overlay", "brush_radius", "status",
      "progress", "error", "round_index", "round_history", "annotated_frames", "suggested_frame"]) {
      on(`change:${key}`, () => {
        this.syncControls();
        this.invalidate();
      });
    }
    for (const key of ["active_object", "round_history", "suggested_frame"]) on(`change:${key}`, () => this.renderLists());
    on("change:width", () => this.onSizeChanged());
    on("change:height", () => this.onSizeChanged());
  }

  private onSizeChanged(): void {
    this.view.imageWidth = this.get("width");
    this.view.imageHeight = this.get("height");
    this.resize();
  }

  private onObjectsChanged(): void {
    const objects = this.get("objects");
    const ids = new Set(objects.map((o) => o.id));
    for (const frame of this.strokes.framesWithStrokes()) {
      for (const s of this.strokes.get(frame)) if (s.objectId !== 0 && !ids.has(s.objectId)) this.strokes.dropObject(s.objectId);
    }
    const active = this.get("active_object");
    if (this.selectNewObject && objects.length > 0) {
      this.selectNewObject = false;
      this.set("active_object", objects[objects.length - 1]!.id);
    } else if (active !== 0 && !ids.has(active)) {
      this.set("active_object", objects[0]?.id ?? 0);
    }
    this.renderLists();
    this.syncControls();
    this.invalidate();
  }

  onMessage(raw: unknown, buffers: DataView[]): void {
    const msg = parseIncoming(raw);
    if (msg === null) {
      this.stats.lastError = `malformed message from the kernel: ${JSON.stringify(raw).slice(0, 120)}`;
      console.error("manet annotator:", this.stats.lastError);
      return;
    }
    try {
      this.dispatch(msg, buffers.map((b) => bytesOf(b)));
    } catch (error) {
      this.stats.lastError = String(error);
      console.error("manet annotator:", error);
      this.showLocalError(String(error));
    }
  }

  private dispatch(msg: IncomingMessage, buffers: Uint8Array[]): void {
    switch (msg.type) {
      case "frame":
        this.onFrame(msg.index, buffers[0]);
        break;
      case "mask": {
        const started = performance.now();
        const ids = decodeUint8Map(msg.header, buffers[0]);
        if (this.masks.accept(msg.index, msg.version, msg.pending, ids)) {
          if (msg.pending) {
            this.stats.pendingMaskTimes.push(performance.now());
            this.stats.decodeMs.push(performance.now() - started);
          }
          if (msg.index === this.frame) this.invalidate();
          this.drawTimelineSoon();
        }
        break;
      }
      case "map":
        this.onMap(msg.index, msg.object_id, msg.kind, msg.version, msg.header.encoding === "none"
          ? null : decodeUint8Map(msg.header, buffers[0]), msg.reason ?? "no map");
        break;
      case "round_started":
        this.runRequested = false;
        this.masks.startRound(msg.frame);
        this.stats.pendingMaskTimes = [];
        this.stats.decodeMs = [];
        this.stats.drawMs = [];
        this.stats.interactiveDrawnAt = 0;
        break;
      case "round_finished":
        if (this.masks.runningFrame >= 0) this.strokes.forget(this.masks.runningFrame);
        this.masks.finishRound(msg.version);
        this.layers.clearMaps();
        this.stats.roundFinishedAt = performance.now();
        this.syncControls();
        this.invalidate();
        break;
      case "round_cancelled":
        this.masks.cancelRound();
        this.syncControls();
        this.invalidate();
        break;
      case "exported":
        this.flash(`saved ${msg.path}`);
        break;
      case "error":
        this.stats.lastError = msg.message;
        this.runRequested = false;
        this.syncControls();
        break;
    }
  }

  private onFrame(index: number, jpeg: Uint8Array | undefined): void {
    if (jpeg === undefined) throw new Error(`frame ${index} arrived without its JPEG buffer`);
    const copy = jpeg.slice();
    this.decode(copy).then((bitmap) => {
      this.frameRequests.delete(index);
      this.frames.set(index, bitmap);
      this.stats.framesReceived += 1;
      if (index === this.frame) this.invalidate();
    }).catch((error: unknown) => {
      this.frameRequests.delete(index);
      this.showLocalError(`could not decode frame ${index}: ${String(error)}`);
    });
  }

  private onMap(index: number, objectId: number, kind: MapKind, version: number, values: Ids, reason: string): void {
    this.layers.storeMap(mapKey(version, index, objectId, kind), values, reason, this.get("width"), this.get("height"));
    if (index === this.frame) this.invalidate();
  }

  /** Show a short note over the canvas for a few seconds. */
  flash(message: string): void {
    this.ui.hint.textContent = message;
    if (this.hintTimer !== null) clearTimeout(this.hintTimer);
    this.hintTimer = setTimeout(() => {
      this.ui.hint.textContent = "";
      this.hintTimer = null;
    }, 4000);
  }

  private showLocalError(message: string): void {
    this.ui.errorText.textContent = message;
    this.ui.errorBanner.hidden = false;
  }

  // ------------------------------------------------------------------ frames and navigation
  clampFrame(t: number): number {
    return Math.min(Math.max(0, this.get("num_frames") - 1), Math.max(0, Math.round(t)));
  }

  requestFrame(t: number): void {
    if (t < 0 || t >= this.get("num_frames") || this.frames.has(t) || this.frameRequests.has(t)) return;
    this.frameRequests.add(t);
    this.send({ type: "request_frame", index: t });
  }

  mapCacheSize(): number {
    return this.layers.mapCount;
  }

  hasFrame(t: number): boolean {
    return this.frames.has(t);
  }

  /** Show frame `t`; `sync` writes it back to the `frame_index` trait (debounced while playing). */
  setFrame(t: number, sync = true): void {
    this.frame = this.clampFrame(t);
    this.requestFrame(this.frame);
    for (let k = 1; k <= PREFETCH; k++) this.requestFrame(this.frame + k);
    this.builder = null;
    if (sync) this.syncFrameIndex();
    this.syncControls();
    this.invalidate();
  }

  private syncFrameIndex(): void {
    if (this.syncTimer !== null) return;
    const delay = this.playTimer !== null ? 250 : 0;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = null;
      if (this.get("frame_index") !== this.frame) this.set("frame_index", this.frame);
    }, delay);
  }

  togglePlay(): void {
    if (this.playTimer !== null) {
      this.stop();
      return;
    }
    if (this.frame >= this.get("num_frames") - 1) this.setFrame(0);
    this.playTimer = setInterval(() => {
      const next = this.frame + 1;
      if (next >= this.get("num_frames")) {
        this.stop();
        return;
      }
      if (this.frames.has(next)) this.setFrame(next);
      else this.requestFrame(next);
    }, 1000 / Math.max(1, this.get("play_fps")));
    this.syncControls();
  }

  stop(): void {
    if (this.playTimer !== null) clearInterval(this.playTimer);
    this.playTimer = null;
    this.syncControls();
  }

  get playing(): boolean {
    return this.playTimer !== null;
  }

  // ------------------------------------------------------------------ actions
  /** A round runs, or Run was pressed and the kernel has not answered yet (no double runs). */
  get busy(): boolean {
    const s = this.get("status");
    return this.runRequested || (s !== "idle" && s !== "preparing");
  }

  run(): void {
    const strokes = this.strokes.get(this.frame);
    if (strokes.length === 0) {
      this.flash("draw a stroke on this frame first");
      return;
    }
    if (this.busy) {
      this.flash("a round is running: wait or cancel it");
      return;
    }
    const { content, buffers } = encodeRun(this.frame, strokes);
    this.runRequested = true;
    this.stats.runSentAt = performance.now();
    this.stats.interactiveDrawnAt = 0;
    this.send(content, buffers);
  }

  selectObject(position: number): void {
    if (position === 0) {
      this.set("active_object", 0);
      return;
    }
    const entry = this.get("objects")[position - 1];
    if (entry !== undefined) this.set("active_object", entry.id);
  }

  addObject(): void {
    this.selectNewObject = true;
    this.send({ type: "add_object" });
  }

  cycleMap(): void {
    const order = ["none", ...MAP_KINDS] as const;
    const index = order.indexOf(this.get("map_overlay"));
    this.set("map_overlay", order[(index + 1) % order.length]!);
  }

  colorOf(objectId: number): string {
    if (objectId === 0) return "#9e9e9e";
    return this.get("objects").find((o) => o.id === objectId)?.color ?? "#ff00ff";
  }

  afterStrokesChanged(): void {
    this.syncControls();
    this.invalidate();
  }

  syncControls(): void {
    syncControls(this);
  }

  renderLists(): void {
    renderLists(this);
  }

  // ------------------------------------------------------------------ drawing
  resize(): void {
    const box = this.ui.canvasBox;
    const width = Math.max(200, box.clientWidth || 640);
    const aspect = this.get("height") / Math.max(1, this.get("width"));
    const height = Math.max(160, Math.min(this.get("canvas_height"), Math.round(width * (aspect || 0.5625))));
    if (width === this.cssWidth && height === this.cssHeight) return;
    this.cssWidth = width;
    this.cssHeight = height;
    const dpr = globalThis.devicePixelRatio || 1;
    const canvas = this.ui.canvas;
    canvas.style.height = `${height}px`;
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    this.view.resize(width, height);
    this.invalidate();
  }

  invalidate(): void {
    if (this.drawPending) return;
    this.drawPending = true;
    const raf = globalThis.requestAnimationFrame ?? ((f: FrameRequestCallback) => setTimeout(() => f(performance.now()), 16));
    raf(() => {
      this.drawPending = false;
      this.draw();
    });
  }

  private currentHeat(): { layer: Layer | null; message: string } {
    const kind = this.get("map_overlay");
    if (kind === "none") return { layer: null, message: "" };
    const objects = this.get("objects");
    const objectId = this.get("active_object") || objects[0]?.id || 0;
    if (this.get("round_index") === 0) return { layer: null, message: `${kind} map: run a round first` };
    if (this.busy) return { layer: null, message: `${kind} map: shown when the round is done` };
    const entry = this.layers.map(mapKey(this.masks.version, this.frame, objectId, kind),
      () => this.send({ type: "request_map", index: this.frame, object_id: objectId, kind }));
    if (entry === undefined) return { layer: null, message: `${kind} map: loading…` };
    if ("reason" in entry) return { layer: null, message: `${kind} map: ${entry.reason}` };
    const name = objects.find((o) => o.id === objectId)?.name ?? `object ${objectId}`;
    return { layer: entry.layer, message: `${kind} map of ${name} (bright = close)` };
  }

  draw(): void {
    const started = performance.now();
    const ctx = this.ui.canvas.getContext("2d");
    this.drawTimelineSoon();
    if (ctx === null) return;
    const haveRounds = this.get("round_index") > 0;
    const ids = this.masks.get(this.frame, haveRounds);
    if (ids === undefined && this.masks.shouldRequest(this.frame, haveRounds)) {
      this.send({ type: "request_mask", index: this.frame });
    }
    const heat = this.currentHeat();
    const frame = this.frames.get(this.frame) ?? null;
    const strokes = [...this.strokes.get(this.frame)];
    if (this.builder !== null) strokes.push(this.builder.stroke());
    const active = this.get("active_object");
    drawScene(ctx, this.view, globalThis.devicePixelRatio || 1, this.cssWidth, this.cssHeight, {
      frame,
      heat: heat.layer,
      heatAlpha: Math.max(0.35, this.get("overlay_opacity")),
      overlay: this.layers.overlayFor(ids, `${this.frame}:${this.masks.version}:${this.masks.running}`,
        this.get("objects"), this.get("width"), this.get("height"),
        heat.layer !== null ? "outline" : this.get("overlay_mode"), this.get("overlay_opacity")),
      strokes,
      colorOf: (id) => this.colorOf(id),
      cursor: this.cursor === null ? null : { ...this.cursor, radius: this.get("brush_radius"), color: this.colorOf(active) },
      background: this.themeColor("--jp-layout-color2", "#2b2b2b"),
      message: frame === null ? "loading frame…" : heat.message,
    });
    this.stats.draws += 1;
    if (this.masks.running) this.stats.drawMs.push(performance.now() - started);
    if (this.frame === this.masks.runningFrame && this.masks.hasPending(this.frame) &&
        this.stats.interactiveDrawnAt === 0 && this.stats.runSentAt > 0) {
      this.stats.interactiveDrawnAt = performance.now();
    }
  }

  drawTimelineSoon(): void {
    if (this.timelinePending) return;
    this.timelinePending = true;
    setTimeout(() => {
      this.timelinePending = false;
      paintTimeline(this);
    }, 30);
  }

  themeColor(name: string, fallback: string): string {
    const value = getComputedStyle(this.ui.root).getPropertyValue(name).trim();
    return value || fallback;
  }
}
