/**
 * Test harness for views: a fake anywidget model that records sent messages, a canvas 2-D
 * context mock (jsdom has none), and pointer / key event helpers.
 */
import { afterEach, beforeEach, vi } from "vitest";
import type { AnyModel } from "@anywidget/types";
import { PROTOCOL_VERSION, type OutgoingMessage } from "../protocol";
import type { Traits } from "../traits";
import { AnnotatorView } from "../view";

type Handler = (...args: unknown[]) => void;

export class FakeModel {
  traits: Traits;
  handlers = new Map<string, Handler[]>();
  sent: { content: OutgoingMessage; buffers?: ArrayBuffer[] }[] = [];

  constructor(overrides: Partial<Traits> = {}) {
    this.traits = {
      num_frames: 10, height: 60, width: 80, objects: [{ id: 1, name: "object 1", color: "#e6194b" },
        { id: 2, name: "object 2", color: "#3cb44b" }],
      round_index: 0, status: "idle", progress: { done: 0, total: 0 }, error: "", suggested_frame: -1,
      annotated_frames: [], round_history: [], mask_version: 0, can_undo: false, protocol_version: PROTOCOL_VERSION,
      frame_index: 0,
      active_object: 1, overlay_opacity: 0.5, overlay_mode: "fill", map_overlay: "none", brush_radius: 4,
      tool: "scribble", click_radius: 2, autosave_path: "", autosave_state: "off", play_fps: 12, canvas_height: 480,
      range_start: -1, range_stop: -1, propagation_direction: "both",
      ...overrides,
    };
  }

  get(key: string): unknown {
    return this.traits[key];
  }

  set(key: string, value: unknown): void {
    const changed = this.traits[key] !== value;
    this.traits[key] = value;
    if (changed) this.emit(`change:${key}`);
  }

  save_changes(): void {}

  on(event: string, handler: Handler): void {
    this.handlers.set(event, [...(this.handlers.get(event) ?? []), handler]);
  }

  off(event: string, handler: Handler): void {
    this.handlers.set(event, (this.handlers.get(event) ?? []).filter((h) => h !== handler));
  }

  emit(event: string, ...args: unknown[]): void {
    for (const h of this.handlers.get(event) ?? []) h(...args);
  }

  send(content: OutgoingMessage, _callbacks?: unknown, buffers?: ArrayBuffer[]): void {
    this.sent.push({ content, buffers });
  }

  receive(content: unknown, buffers: Uint8Array[] = []): void {
    this.emit("msg:custom", content, buffers.map((b) => new DataView(b.buffer, b.byteOffset, b.byteLength)));
  }

  ofType<T extends OutgoingMessage["type"]>(type: T): Extract<OutgoingMessage, { type: T }>[] {
    return this.sent.map((s) => s.content).filter((c): c is Extract<OutgoingMessage, { type: T }> => c.type === type);
  }
}

export const drawn: { canvas: HTMLCanvasElement; op: string; args: unknown[] }[] = [];

function mockContext(canvas: HTMLCanvasElement): CanvasRenderingContext2D {
  const target: Record<string, unknown> = {
    createImageData: (w: number, h: number) => ({ data: new Uint8ClampedArray(w * h * 4), width: w, height: h }),
    measureText: () => ({ width: 10 }),
  };
  return new Proxy(target, {
    get(t, prop: string) {
      if (prop in t) return t[prop];
      return (...args: unknown[]) => { drawn.push({ canvas, op: prop, args }); };
    },
    set(t, prop: string, value) {
      t[prop] = value;
      return true;
    },
  }) as unknown as CanvasRenderingContext2D;
}

const contexts = new WeakMap<HTMLCanvasElement, CanvasRenderingContext2D>();

/** Call at the top of a test file: every canvas gets a recording context, the DOM is emptied after. */
export function useCanvasMock(): void {
  beforeEach(() => {
    drawn.length = 0;
    vi.spyOn(HTMLCanvasElement.prototype, "getContext").mockImplementation(function (this: HTMLCanvasElement) {
      let ctx = contexts.get(this);
      if (ctx === undefined) {
        ctx = mockContext(this);
        contexts.set(this, ctx);
      }
      return ctx as never;
    });
  });
  afterEach(() => {
    vi.restoreAllMocks();
    document.body.replaceChildren();
  });
}

export function setup(overrides: Partial<Traits> = {}): { model: FakeModel; view: AnnotatorView } {
  const model = new FakeModel(overrides);
  const el = document.createElement("div");
  document.body.appendChild(el);
  const decoder = async (): Promise<CanvasImageSource> => document.createElement("canvas");
  const view = new AnnotatorView(model as unknown as AnyModel<Traits>, el, decoder);
  return { model, view };
}

export function pointer(target: EventTarget, type: string, x: number, y: number, init: PointerEventInit = {}): void {
  target.dispatchEvent(new PointerEvent(type, {
    clientX: x, clientY: y, pointerId: 1, pointerType: "mouse", bubbles: true, cancelable: true, ...init,
  }));
}

export function key(target: EventTarget, k: string, init: KeyboardEventInit = {}): KeyboardEvent {
  const event = new KeyboardEvent("keydown", { key: k, bubbles: true, cancelable: true, ...init });
  target.dispatchEvent(event);
  return event;
}

export const nextFrame = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 40));

