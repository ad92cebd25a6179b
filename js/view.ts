/**
 * One rendered annotator: wires the model (synced traits + custom messages) to the DOM, the
 * canvas, pointer and keyboard input. Frames and masks are cached here and fetched lazily.
 */
import type { AnyModel } from "@anywidget/types";
import { LruCache } from "./cache";
import { buildControls, type Controls } from "./controls";
import { bindInput } from "./input";
import { drawView } from "./draw";
import { Layers } from "./layers";
import { MaskStore, type Ids } from "./masks";
import { handleMessage } from "./messages";
import { bindControls, paintTimeline, renderLists, syncControls } from "./panel";
import { PaintStore } from "./paint";
import { PromptStore } from "./prompts";
import { encodeApplyMask, encodeRun, type BoxPrompt, type OutgoingMessage } from "./protocol";
import type { StrokeBuilder } from "./strokes";
import type { Gesture } from "./tools";
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
  /** Prompts (strokes, clicks, boxes) not yet run, per frame. */
  readonly prompts = new PromptStore();
  /** Painted masks not yet applied, per frame. */
  readonly paint = new PaintStore();
  readonly masks = new MaskStore();
  readonly stats: Stats = {
    runSentAt: 0, interactiveDrawnAt: 0, pendingMaskTimes: [], roundFinishedAt: 0, framesReceived: 0, draws: 0,
    decodeMs: [], drawMs: [], lastError: "",
  };
  readonly view: Viewport;
  frame = 0;
  gesture: Gesture | null = null;
  /** Previews of the gesture in progress: a stroke being drawn, a box being dragged. */
  builder: StrokeBuilder | null = null;
  boxDraft: BoxPrompt | null = null;
  cursor: { x: number; y: number } | null = null;
  /** Decoded frames and the overlay / matching-map layers (caches that draw.ts reads). */
  readonly frames: LruCache<number, CanvasImageSource & { close?: () => void }>;
  private frameRequests = new Set<number>();
  readonly layers = new Layers();
  private drawPending = false;
  private playTimer: ReturnType<typeof setInterval> | null = null;
  private syncTimer: ReturnType<typeof setTimeout> | null = null;
  private hintTimer: ReturnType<typeof setTimeout> | null = null;
  /** Run or Apply was sent and the kernel has not started the round yet (no double sends). */
  runRequested = false;
  /** What the last round was sent from: its prompts or its painting are forgotten when it commits. */
  sentKind: "prompts" | "mask" = "prompts";
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
    on("change:tool", () => {
      this.cancelGesture();
      this.syncControls();
      this.invalidate();
    });
    on("change:autosave_state", () => this.syncControls());
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
    for (const objectId of this.prompts.objectIds()) {
      if (objectId !== 0 && !ids.has(objectId)) this.prompts.dropObject(objectId);
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

  /** A custom message from the kernel (see messages.ts); replaced by the browser tests to observe them. */
  onMessage(raw: unknown, buffers: DataView[]): void {
    handleMessage(this, raw, buffers);
  }

  /** Decode and cache a frame's JPEG; draws it when it is the frame on screen. */
  receiveFrame(index: number, jpeg: Uint8Array | undefined): void {
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

  /** Show a short note over the canvas for a few seconds. */
  flash(message: string): void {
    this.ui.hint.textContent = message;
    if (this.hintTimer !== null) clearTimeout(this.hintTimer);
    this.hintTimer = setTimeout(() => {
      this.ui.hint.textContent = "";
      this.hintTimer = null;
    }, 4000);
  }

  showLocalError(message: string): void {
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
    this.cancelGesture();
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
  /**
   * A round runs, or Run was pressed and the kernel has not answered yet (no double runs). A
   * warm-up or an autosave does not count: the kernel queues a new round behind them.
   */
  get busy(): boolean {
    const s = this.get("status");
    return this.runRequested || (s !== "idle" && s !== "preparing" && s !== "saving");
  }

  /** True with the paint or erase tool: Enter, undo and clear act on the painted mask. */
  get painting(): boolean {
    const tool = this.get("tool");
    return tool === "paint" || tool === "erase";
  }

  /** Send every prompt of the frame on screen (strokes, clicks, boxes) as one round. */
  run(): void {
    if (this.prompts.count(this.frame) === 0) {
      this.flash("draw a stroke, click or box on this frame first");
      return;
    }
    const { content, buffers } = encodeRun(this.frame, this.prompts.get(this.frame), this.prompts.boxes(this.frame));
    this.sendRound(content, buffers, "prompts");
  }

  /** Send the painted mask of the frame on screen: the kernel takes it as that frame's result. */
  apply(): void {
    const ids = this.paint.ids(this.frame);
    if (ids === undefined || !this.paint.edited(this.frame)) {
      this.flash("paint on this frame's mask first (n: paint, e: erase)");
      return;
    }
    const { content, buffers } = encodeApplyMask(this.frame, ids, this.get("width"), this.get("height"));
    this.sendRound(content, buffers, "mask");
  }

  private sendRound(content: OutgoingMessage, buffers: ArrayBuffer[], kind: "prompts" | "mask"): void {
    if (this.busy) {
      this.flash("a round is running: wait or cancel it");
      return;
    }
    this.runRequested = true;
    this.sentKind = kind;
    this.stats.runSentAt = performance.now();
    this.stats.interactiveDrawnAt = 0;
    this.send(content, buffers);
  }

  /** End the gesture in progress without adding anything (frame change, tool change). */
  cancelGesture(): void {
    const gesture = this.gesture;
    this.gesture = null;
    gesture?.end(false);
    this.builder = null;
    this.boxDraft = null;
  }

  /** The mask shown on `frame` without painting (null: all background; undefined: not loaded yet). */
  shownMask(frame: number): Ids | undefined {
    return this.masks.get(frame, this.get("round_index") > 0);
  }

  addObject(): void {
    this.selectNewObject = true;
    this.send({ type: "add_object" });
  }

  colorOf(objectId: number): string {
    if (objectId === 0) return "#9e9e9e";
    return this.get("objects").find((o) => o.id === objectId)?.color ?? "#ff00ff";
  }

  afterPromptsChanged(): void {
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

  /** Draw the canvas now (see draw.ts); `invalidate` schedules it for the next animation frame. */
  draw(): void {
    const started = performance.now();
    this.drawTimelineSoon();
    if (!drawView(this, this.cssWidth, this.cssHeight)) return;
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
