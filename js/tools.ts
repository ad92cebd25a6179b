/**
 * What a press, drag and release on the canvas does with each tool. A gesture starts on
 * pointerdown at an image point (original-frame pixels), follows the pointer, and ends on release
 * (commit) or on cancel. Prompt gestures add to the frame's {@link PromptStore}; paint gestures
 * edit the frame's mask in the {@link PaintStore}.
 *
 * - scribble: a stroke of the brush radius; right button = background.
 * - click: a point for the selected object at the press; right button (or background selected) = negative.
 * - box: a rectangle dragged around the object (also Shift+drag with the other prompt tools);
 *   one per object and round, a new one replaces it.
 * - paint / erase: brush discs that write the selected object's id / clear its pixels; the right
 *   button does the opposite.
 */
import type { PaintMode } from "./paint";
import type { BoxPrompt, Stroke } from "./protocol";
import { StrokeBuilder } from "./strokes";
import type { AnnotatorView } from "./view";

/** What a gesture in progress shows before it ends: the stroke being drawn, the box being dragged. */
export interface Preview {
  stroke?: Stroke;
  box?: BoxPrompt;
}

export interface Gesture {
  move(x: number, y: number, pressureFactor: number): void;
  end(commit: boolean): void;
  preview?(): Preview;
}

export interface Press {
  button: number;
  shiftKey: boolean;
  pressureFactor: number;
}

/** Smallest box side in image pixels; a shorter drag is taken as a slip, not a box. */
export const MIN_BOX_SIZE = 2;

export function startGesture(v: AnnotatorView, press: Press, x: number, y: number): Gesture | null {
  const tool = v.get("tool");
  if (tool === "paint" || tool === "erase") {
    const opposite: PaintMode = tool === "paint" ? "erase" : "paint";
    return paintGesture(v, press.button === 2 ? opposite : tool, x, y);
  }
  const objectId = press.button === 2 ? 0 : v.get("active_object");
  if (tool === "box" || press.shiftKey) return boxGesture(v, objectId, x, y);
  if (tool === "click") return clickGesture(v, objectId, x, y);
  return strokeGesture(v, objectId, x, y, press.pressureFactor);
}

function strokeGesture(v: AnnotatorView, objectId: number, x: number, y: number, pressure: number): Gesture {
  const frame = v.frame;
  const spacing = Math.max(0.5, 1.5 / v.view.scale);
  const builder = new StrokeBuilder(objectId, v.get("brush_radius"), v.get("width"), v.get("height"), spacing);
  builder.add(x, y, pressure);
  return {
    move: (mx, my, p) => { builder.add(mx, my, p); },
    end: (commit) => {
      if (commit && builder.pointCount > 0) v.prompts.add(frame, builder.stroke());
      v.afterPromptsChanged();
    },
    preview: () => ({ stroke: builder.stroke() }),
  };
}

function clickGesture(v: AnnotatorView, objectId: number, x: number, y: number): Gesture {
  const frame = v.frame;
  return {
    move: () => undefined,
    end: (commit) => {
      if (!commit) return;
      v.prompts.add(frame, { objectId, radius: v.get("click_radius"), points: [x, y], kind: "click" });
      v.afterPromptsChanged();
    },
  };
}

/** The box spanned by two corners, clamped to a `width` x `height` frame. */
export function boxFrom(objectId: number, ax: number, ay: number, bx: number, by: number,
  width: number, height: number): BoxPrompt {
  const clampX = (value: number): number => Math.min(width, Math.max(0, value));
  const clampY = (value: number): number => Math.min(height, Math.max(0, value));
  return {
    objectId, x0: clampX(Math.min(ax, bx)), y0: clampY(Math.min(ay, by)),
    x1: clampX(Math.max(ax, bx)), y1: clampY(Math.max(ay, by)),
  };
}

function boxGesture(v: AnnotatorView, objectId: number, x: number, y: number): Gesture | null {
  if (objectId === 0) {
    v.flash("a box needs an object: select one with 1-9 first");
    return null;
  }
  const frame = v.frame;
  const [width, height] = [v.get("width"), v.get("height")];
  let box = boxFrom(objectId, x, y, x, y, width, height);
  return {
    move: (mx, my) => { box = boxFrom(objectId, x, y, mx, my, width, height); },
    preview: () => ({ box }),
    end: (commit) => {
      if (commit) {
        if (box.x1 - box.x0 >= MIN_BOX_SIZE && box.y1 - box.y0 >= MIN_BOX_SIZE) v.prompts.setBox(frame, box);
        else v.flash("drag to draw a box around the object");
      }
      v.afterPromptsChanged();
    },
  };
}

function paintGesture(v: AnnotatorView, mode: PaintMode, x: number, y: number): Gesture | null {
  if (v.busy) {
    v.flash("painting waits for the running round");
    return null;
  }
  const frame = v.frame;
  const base = v.shownMask(frame);
  if (base === undefined) {
    v.flash("this frame's mask is still loading");
    return null;
  }
  const stroke = v.paint.startStroke(frame, base, v.get("width"), v.get("height"), v.get("brush_radius"), mode,
    v.get("active_object"));
  stroke.to(x, y);
  v.invalidate();
  return {
    move: (mx, my) => {
      stroke.to(mx, my);
      v.invalidate();
    },
    end: () => {
      stroke.finish();
      v.afterPromptsChanged();
    },
  };
}
