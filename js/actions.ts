/**
 * What the keys and the edit buttons do to a view: the tool-aware undo, redo and clear (prompts
 * with the prompt tools, the painted mask with paint / erase), object selection, and
 * {@link perform} for every keyboard action.
 */
import type { KeyAction } from "./keyboard";
import { MAP_KINDS } from "./protocol";
import type { AnnotatorView } from "./view";

export function undo(v: AnnotatorView): void {
  if (v.painting) v.paint.undo(v.frame);
  else v.prompts.undo(v.frame);
  v.afterPromptsChanged();
}

export function redo(v: AnnotatorView): void {
  if (v.painting) v.paint.redo(v.frame);
  else v.prompts.redo(v.frame);
  v.afterPromptsChanged();
}

/** Clear the frame's prompts (undoable), or with a paint tool drop its painting. */
export function clearFrame(v: AnnotatorView): void {
  if (v.painting) {
    if (v.paint.forget(v.frame)) v.flash("painting dropped: the mask is back as it was");
  } else {
    v.prompts.clear(v.frame);
  }
  v.afterPromptsChanged();
}

/** Select the object at list position `position` (1-based; 0 = background). */
export function selectObject(v: AnnotatorView, position: number): void {
  if (position === 0) {
    v.set("active_object", 0);
    return;
  }
  const entry = v.get("objects")[position - 1];
  if (entry !== undefined) v.set("active_object", entry.id);
}

export function cycleMap(v: AnnotatorView): void {
  const order = ["none", ...MAP_KINDS] as const;
  const index = order.indexOf(v.get("map_overlay"));
  v.set("map_overlay", order[(index + 1) % order.length]!);
}

export function perform(v: AnnotatorView, action: KeyAction): void {
  switch (action.kind) {
    case "step": v.setFrame(v.frame + action.delta); break;
    case "first": v.setFrame(0); break;
    case "last": v.setFrame(v.get("num_frames") - 1); break;
    case "play": v.togglePlay(); break;
    case "select": selectObject(v, action.objectId); break;
    case "run": if (v.painting) v.apply(); else v.run(); break;
    case "cancel": v.send({ type: "cancel" }); break;
    case "undo": undo(v); break;
    case "redo": redo(v); break;
    case "clear": clearFrame(v); break;
    case "tool": v.set("tool", action.tool); break;
    case "brush": v.set("brush_radius", Math.min(200, Math.max(0.5, v.get("brush_radius") * action.factor))); break;
    case "fit": v.view.fit(); v.invalidate(); break;
    case "cycleMap": cycleMap(v); break;
    case "toggleMode": v.set("overlay_mode", v.get("overlay_mode") === "fill" ? "outline" : "fill"); break;
    case "suggested": if (v.get("suggested_frame") >= 0) v.setFrame(v.get("suggested_frame")); break;
    case "help": v.ui.help.hidden = !v.ui.help.hidden; break;
  }
}
