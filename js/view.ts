/**
 * One rendered annotator: wires the model (synced traits + custom messages) to the DOM, the
 * canvas, pointer and keyboard input. Its parts sit behind narrow interfaces: decoded frames
 * ({@link FrameCache}), playback ({@link Player}), the round client that owns run state, masks and
 * stats ({@link RoundClient}), and draw scheduling ({@link DrawScheduler}).
 */
import type { AnyModel } from "@anywidget/types";
import { buildControls, type Controls } from "./controls";
import { drawView } from "./draw";
import { defaultDecoder, FrameCache, type ImageDecoder } from "./frames";
import { bindInput } from "./input";
import { Layers } from "./layers";
import type { Ids, MaskStore } from "./masks";
import { handleMessage, type MessageTarget } from "./messages";
import { bindControls, paintTimeline, renderLists, syncControls } from "./panel";
import { PaintStore } from "./paint";
import { Player } from "./player";
import { PromptStore } from "./prompts";
import { propagationFor, withEnd, type RangeTraits } from "./range";
import { encodeApplyMask, encodeRun, type OutgoingMessage, type PropagationRange } from "./protocol";
import { RoundClient, type Stats } from "./rounds";
import { DrawScheduler } from "./scheduler";
import type { Gesture } from "./tools";
import type { Traits } from "./traits";
import { Viewport } from "./viewport";

export { defaultDecoder, type ImageDecoder } from "./frames";
export type { Stats } from "./rounds";

const PREFETCH = 6;
const HINT_MS = 4000;

export class AnnotatorView implements MessageTarget {
  readonly ui: Controls;
  /** Prompts (strokes, clicks, boxes) not yet run, per frame. */
  readonly prompts = new PromptStore();
  /** Painted masks not yet applied, per frame. */
  readonly paint = new PaintStore();
  readonly layers = new Layers();
  readonly view: Viewport;
  readonly frames: FrameCache;
  readonly player: Player;
  readonly rounds: RoundClient;
  private readonly scheduler: DrawScheduler;
  frame = 0;
  /** The pointer gesture in progress (its preview is drawn) and the pointer's image position; input.ts sets both. */
  gesture: Gesture | null = null;
  cursor: { x: number; y: number } | null = null;
  private hintTimer: ReturnType<typeof setTimeout> | null = null;
  private cssWidth = 1;
  private cssHeight = 1;
  private selectNewObject = false;
  private disposers: (() => void)[] = [];

  constructor(readonly model: AnyModel<Traits>, el: HTMLElement, decode: ImageDecoder = defaultDecoder) {
    this.ui = buildControls(el);
    this.view = new Viewport(this.get("width"), this.get("height"), 640, 360);
    this.scheduler = new DrawScheduler(() => this.draw(), () => paintTimeline(this));
    this.frames = new FrameCache({
      send: (message) => this.send(message),
      numFrames: () => this.get("num_frames"),
      ready: (index) => {
        this.rounds.stats.framesReceived += 1;
        if (index === this.frame) this.invalidate();
      },
      failed: (message) => this.showLocalError(message),
    }, decode);
    this.player = new Player({
      frame: () => this.frame, numFrames: () => this.get("num_frames"), fps: () => this.get("play_fps"),
      hasFrame: (t) => this.frames.has(t), requestFrame: (t) => this.frames.request(t), show: (t) => this.setFrame(t),
      frameIndex: () => this.get("frame_index"), writeFrameIndex: (t) => this.set("frame_index", t),
      changed: () => this.syncControls(),
    });
    this.rounds = new RoundClient({
      send: (message, buffers) => this.send(message, buffers),
      status: () => this.get("status"),
      flash: (message) => this.flash(message),
      committed: (frame, source) => (source === "mask" ? this.paint.forget(frame) : this.prompts.forget(frame)),
      changed: () => {
        this.syncControls();
        this.invalidate();
      },
    });
    this.frame = this.clampFrame(this.get("frame_index"));
    this.masks.setVersion(this.get("mask_version"));
    this.bindModel();
    this.disposers.push(bindControls(this), bindInput(this));
    this.renderLists();
    this.syncControls();
    this.resize();
    this.frames.request(this.frame);
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
    this.player.dispose();
    this.scheduler.dispose();
    for (const d of this.disposers) d();
    if (this.hintTimer !== null) clearTimeout(this.hintTimer);
    this.frames.clear();
  }

  /** The masks the browser holds (owned by the round client). */
  get masks(): MaskStore {
    return this.rounds.masks;
  }

  /** Timings for the latency benchmark and the browser tests (owned by the round client). */
  get stats(): Stats {
    return this.rounds.stats;
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
      if (t !== this.frame && !this.player.syncing) this.setFrame(t, false);
    });
    on("change:mask_version", () => {
      if (this.masks.setVersion(this.get("mask_version"))) this.layers.clearMaps();
      this.invalidate();
    });
    on("change:objects", () => this.onObjectsChanged());
    for (const key of ["active_object", "overlay_opacity", "overlay_mode", "map_overlay", "brush_radius", "status",
      "progress", "error", "round_index", "round_history", "annotated_frames", "suggested_frame", "can_undo",
      "range_start", "range_stop", "propagation_direction"]) {
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

  // ------------------------------------------------------------------ MessageTarget
  receiveFrame(index: number, jpeg: Uint8Array | undefined): void {
    void this.frames.receive(index, jpeg);
  }

  currentFrame(): number {
    return this.frame;
  }

  size(): { width: number; height: number } {
    return { width: this.get("width"), height: this.get("height") };
  }

  /** Show a short note over the canvas for a few seconds. */
  flash(message: string): void {
    this.ui.hint.textContent = message;
    if (this.hintTimer !== null) clearTimeout(this.hintTimer);
    this.hintTimer = setTimeout(() => {
      this.ui.hint.textContent = "";
      this.hintTimer = null;
    }, HINT_MS);
  }

  showLocalError(message: string): void {
    this.ui.errorText.textContent = message;
    this.ui.errorBanner.hidden = false;
  }

  // ------------------------------------------------------------------ frames and navigation
  clampFrame(t: number): number {
    return Math.min(Math.max(0, this.get("num_frames") - 1), Math.max(0, Math.round(t)));
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
    for (let k = 0; k <= PREFETCH; k++) this.frames.request(this.frame + k);
    this.cancelGesture();
    if (sync) this.player.syncFrameIndex();
    this.syncControls();
    this.invalidate();
  }

  togglePlay(): void {
    this.player.toggle();
  }

  get playing(): boolean {
    return this.player.playing;
  }

  // ------------------------------------------------------------------ actions
  /** A round runs or was sent (see {@link RoundClient.busy}). */
  get busy(): boolean {
    return this.rounds.busy;
  }

  /** True with the paint or erase tool: Enter, undo and clear act on the painted mask. */
  get painting(): boolean {
    const tool = this.get("tool");
    return tool === "paint" || tool === "erase";
  }

  /** The propagation range of the next round, from the traits (see range.ts). */
  get range(): RangeTraits {
    return { start: this.get("range_start"), stop: this.get("range_stop"),
      direction: this.get("propagation_direction"), numFrames: this.get("num_frames") };
  }

  /** The `propagation` of a round on `frame`; a note to the user and undefined when it is outside the range. */
  private propagationFor(frame: number): PropagationRange | null | undefined {
    const result = propagationFor(this.range, frame);
    if ("error" in result) {
      this.flash(result.error);
      return undefined;
    }
    return result.propagation;
  }

  /** Send every prompt of the frame on screen (strokes, clicks, boxes) as one round. */
  run(): void {
    if (this.prompts.count(this.frame) === 0) {
      this.flash("draw a stroke, click or box on this frame first");
      return;
    }
    const propagation = this.propagationFor(this.frame);
    if (propagation === undefined) return;
    const { content, buffers } = encodeRun(this.frame, this.prompts.get(this.frame), this.prompts.boxes(this.frame),
      propagation);
    this.rounds.send(content, buffers, "prompts");
  }

  /** Send the painted mask of the frame on screen: the kernel takes it as that frame's result. */
  apply(): void {
    const ids = this.paint.ids(this.frame);
    if (ids === undefined || !this.paint.edited(this.frame)) {
      this.flash("paint on this frame's mask first (n: paint, e: erase)");
      return;
    }
    const propagation = this.propagationFor(this.frame);
    if (propagation === undefined) return;
    const { content, buffers } = encodeApplyMask(this.frame, ids, this.get("width"), this.get("height"), propagation);
    this.rounds.send(content, buffers, "mask");
  }

  /** Set one end of the propagation range to the frame on screen ("from here" / "to here"). */
  setRangeEnd(end: "start" | "stop", frame = this.frame): void {
    this.setRange(...withEnd(this.range, end, frame));
  }

  /** Set the propagation range (-1: open end); `setRange(-1, -1)` is the whole video. */
  setRange(start: number, stop: number): void {
    this.model.set("range_start", start);
    this.model.set("range_stop", stop);
    this.model.save_changes();
  }

  /** End the gesture in progress without adding anything (frame change, tool change). */
  cancelGesture(): void {
    const gesture = this.gesture;
    this.gesture = null;
    gesture?.end(false);
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

  /** Schedule a canvas draw for the next animation frame. */
  invalidate(): void {
    this.scheduler.invalidate();
  }

  timelineSoon(): void {
    this.scheduler.timelineSoon();
  }

  /** Draw the canvas now (see draw.ts); `invalidate` schedules it for the next animation frame. */
  draw(): void {
    const started = performance.now();
    this.timelineSoon();
    if (!drawView(this, this.cssWidth, this.cssHeight)) return;
    this.rounds.drawn(this.frame, performance.now() - started);
  }

  themeColor(name: string, fallback: string): string {
    const value = getComputedStyle(this.ui.root).getPropertyValue(name).trim();
    return value || fallback;
  }
}
