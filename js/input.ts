/**
 * Pointer, wheel and keyboard input of one annotator view.
 *
 * Left button / pen / touch uses the selected tool (see `tools.ts`) with the selected object, the
 * right button makes a background prompt (or erases with the paint tool), Shift+drag draws a box,
 * the middle button or Space + drag pans, the wheel zooms about the pointer. Keys are handled on
 * the focusable root, and every key event stops propagating there so JupyterLab's command-mode
 * shortcuts (a, b, d d, ...) never see keys meant for the annotator (the root also carries
 * `data-lm-suppress-shortcuts` for hosts that listen in the capture phase).
 */
import { perform } from "./actions";
import { actionForKey } from "./keyboard";
import { pressureScale } from "./strokes";
import { frameAtX } from "./timeline";
import { startGesture } from "./tools";
import type { AnnotatorView } from "./view";

const EDITABLE = new Set(["INPUT", "SELECT", "TEXTAREA", "BUTTON"]);

export function bindInput(v: AnnotatorView): () => void {
  const { canvas, root, timeline } = v.ui;
  let spaceHeld = false;
  let pan: { x: number; y: number; id: number } | null = null;
  const local = (e: MouseEvent): [number, number] => {
    const rect = canvas.getBoundingClientRect();
    return [e.clientX - rect.left, e.clientY - rect.top];
  };

  const onPointerDown = (e: PointerEvent): void => {
    root.focus({ preventScroll: true });
    const [sx, sy] = local(e);
    if (e.button === 1 || (e.button === 0 && spaceHeld)) {
      pan = { x: sx, y: sy, id: e.pointerId };
    } else if (e.button === 0 || e.button === 2) {
      const [ix, iy] = v.view.toImage(sx, sy);
      if (!v.view.contains(ix, iy)) return;
      v.cancelGesture();
      const press = { button: e.button, shiftKey: e.shiftKey, pressureFactor: pressureScale(e.pressure, e.pointerType) };
      v.gesture = startGesture(v, press, ix, iy);
      if (v.gesture === null) return;
    } else {
      return;
    }
    e.preventDefault();
    canvas.setPointerCapture?.(e.pointerId);
    v.invalidate();
  };

  const onPointerMove = (e: PointerEvent): void => {
    const [sx, sy] = local(e);
    if (pan !== null && e.pointerId === pan.id) {
      v.view.panBy(sx - pan.x, sy - pan.y);
      pan = { ...pan, x: sx, y: sy };
    } else if (v.gesture !== null) {
      const events = typeof e.getCoalescedEvents === "function" ? e.getCoalescedEvents() : [];
      for (const c of events.length > 0 ? events : [e]) {
        const [cx, cy] = local(c);
        const [ix, iy] = v.view.toImage(cx, cy);
        v.gesture.move(ix, iy, pressureScale(c.pressure, c.pointerType));
      }
    }
    const [ix, iy] = v.view.toImage(sx, sy);
    v.cursor = e.pointerType === "touch" ? null : { x: ix, y: iy };
    v.invalidate();
  };

  const onPointerUp = (e: PointerEvent): void => {
    if (pan !== null && e.pointerId === pan.id) pan = null;
    const gesture = v.gesture;
    if (gesture !== null) {
      v.gesture = null;
      const commit = e.type === "pointerup";
      if (commit) gesture.move(...v.view.toImage(...local(e)), pressureScale(e.pressure, e.pointerType));
      gesture.end(commit);
    }
    canvas.releasePointerCapture?.(e.pointerId);
  };

  const onWheel = (e: WheelEvent): void => {
    e.preventDefault();
    const [sx, sy] = local(e);
    const delta = e.deltaMode === 1 ? e.deltaY * 16 : e.deltaY;
    v.view.zoomAt(sx, sy, Math.exp(-delta * 0.0015));
    v.invalidate();
  };

  const onKeyDown = (e: KeyboardEvent): void => {
    e.stopPropagation();
    const target = e.target as HTMLElement | null;
    if (target !== null && target !== root && EDITABLE.has(target.tagName)) {
      if (target.tagName !== "BUTTON" || e.key === "Enter" || e.key === " ") return;
    }
    if (e.key === " ") {
      spaceHeld = true;
      canvas.style.cursor = "grab";
      e.preventDefault();
      return;
    }
    const action = actionForKey(e);
    if (action === null) return;
    e.preventDefault();
    perform(v, action);
  };

  const onKeyUp = (e: KeyboardEvent): void => {
    e.stopPropagation();
    if (e.key === " ") {
      spaceHeld = false;
      canvas.style.cursor = "";
    }
  };

  const onLeave = (): void => {
    v.cursor = null;
    v.invalidate();
  };
  // The right button makes background prompts: neither the browser's menu nor JupyterLab's
  // (which listens on the document in the bubbling phase) may open over the canvas.
  const noMenu = (e: Event): void => {
    e.preventDefault();
    e.stopPropagation();
  };

  // Dragging on the timeline scrubs; Shift+drag sets the propagation range instead.
  let scrubbing = false;
  let rangeFrom: number | null = null;
  const frameUnder = (e: PointerEvent): number => {
    const rect = timeline.getBoundingClientRect();
    return frameAtX(e.clientX - rect.left, v.get("num_frames"), rect.width);
  };
  const onTimelineDown = (e: PointerEvent): void => {
    timeline.setPointerCapture?.(e.pointerId);
    const t = frameUnder(e);
    if (e.shiftKey) {
      rangeFrom = t;
      v.setRange(t, t);
    } else {
      scrubbing = true;
      v.setFrame(t);
    }
  };
  const onTimelineMove = (e: PointerEvent): void => {
    if (scrubbing) v.setFrame(frameUnder(e));
    if (rangeFrom !== null) {
      const t = frameUnder(e);
      v.setRange(Math.min(rangeFrom, t), Math.max(rangeFrom, t));
    }
  };
  const onTimelineUp = (): void => {
    scrubbing = false;
    rangeFrom = null;
  };

  const bindings: [EventTarget, string, EventListener, AddEventListenerOptions?][] = [
    [canvas, "pointerdown", onPointerDown as EventListener],
    [canvas, "pointermove", onPointerMove as EventListener],
    [canvas, "pointerup", onPointerUp as EventListener],
    [canvas, "pointercancel", onPointerUp as EventListener],
    [canvas, "pointerleave", onLeave],
    [canvas, "wheel", onWheel as EventListener, { passive: false }],
    [canvas, "contextmenu", noMenu],
    [root, "keydown", onKeyDown as EventListener],
    [root, "keyup", onKeyUp as EventListener],
    [timeline, "pointerdown", onTimelineDown as EventListener],
    [timeline, "pointermove", onTimelineMove as EventListener],
    [timeline, "pointerup", onTimelineUp],
  ];
  for (const [target, type, listener, options] of bindings) target.addEventListener(type, listener, options);
  return () => {
    for (const [target, type, listener] of bindings) target.removeEventListener(type, listener);
  };
}
