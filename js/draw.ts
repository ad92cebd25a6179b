/**
 * Assembles the scene of a view's current frame for `render.ts`: which id map to show (the
 * painting with a paint tool, else the pending or committed mask, fetched when missing), the
 * matching-map heat layer, the frame's prompts and the tool's cursor.
 */
import { mapKey } from "./layers";
import type { Ids } from "./masks";
import { drawScene, type Layer, type Scene } from "./render";
import type { AnnotatorView } from "./view";

/** Draw `v` on its canvas of `cssWidth` x `cssHeight` CSS pixels; false without a 2-D context. */
export function drawView(v: AnnotatorView, cssWidth: number, cssHeight: number): boolean {
  const ctx = v.ui.canvas.getContext("2d");
  if (ctx === null) return false;
  const shown = shownIds(v);
  const heat = currentHeat(v);
  const frame = v.frames.get(v.frame) ?? null;
  const preview = v.gesture?.preview?.() ?? {};
  const strokes = [...v.prompts.get(v.frame)];
  if (preview.stroke !== undefined) strokes.push(preview.stroke);
  drawScene(ctx, v.view, globalThis.devicePixelRatio || 1, cssWidth, cssHeight, {
    frame,
    heat: heat.layer,
    heatAlpha: Math.max(0.35, v.get("overlay_opacity")),
    overlay: v.layers.overlayFor(shown.ids, shown.key, v.get("objects"), v.get("width"), v.get("height"),
      heat.layer !== null ? "outline" : v.get("overlay_mode"), v.get("overlay_opacity")),
    strokes,
    boxes: v.prompts.boxes(v.frame),
    boxDraft: preview.box ?? null,
    colorOf: (id) => v.colorOf(id),
    cursor: cursorShape(v),
    background: v.themeColor("--jp-layout-color2", "#2b2b2b"),
    message: frame === null ? "loading frame…" : heat.message,
  });
  return true;
}

/** The id map to show on the current frame and its overlay cache key (the painting, if any). */
export function shownIds(v: AnnotatorView): { ids: Ids | undefined; key: string } {
  const painted = v.painting ? v.paint.ids(v.frame) : undefined;
  if (painted !== undefined) return { ids: painted, key: `${v.frame}:paint:${v.paint.revision(v.frame)}` };
  const haveRounds = v.get("round_index") > 0;
  const ids = v.masks.get(v.frame, haveRounds);
  if (ids === undefined && v.masks.shouldRequest(v.frame, haveRounds)) {
    v.send({ type: "request_mask", index: v.frame });
  }
  return { ids, key: `${v.frame}:${v.masks.version}:${v.masks.running}` };
}

function cursorShape(v: AnnotatorView): Scene["cursor"] {
  if (v.cursor === null) return null;
  const tool = v.get("tool");
  const color = v.colorOf(v.get("active_object"));
  if (tool === "box") return { ...v.cursor, radius: 0, color, shape: "cross" };
  const radius = tool === "click" ? v.get("click_radius") : v.get("brush_radius");
  return { ...v.cursor, radius, color, shape: "circle" };
}

function currentHeat(v: AnnotatorView): { layer: Layer | null; message: string } {
  const kind = v.get("map_overlay");
  if (kind === "none") return { layer: null, message: "" };
  const objects = v.get("objects");
  const objectId = v.get("active_object") || objects[0]?.id || 0;
  if (v.get("round_index") === 0) return { layer: null, message: `${kind} map: run a round first` };
  if (v.busy) return { layer: null, message: `${kind} map: shown when the round is done` };
  const entry = v.layers.map(mapKey(v.masks.version, v.frame, objectId, kind),
    () => v.send({ type: "request_map", index: v.frame, object_id: objectId, kind }));
  if (entry === undefined) return { layer: null, message: `${kind} map: loading…` };
  if ("reason" in entry) return { layer: null, message: `${kind} map: ${entry.reason}` };
  const name = objects.find((o) => o.id === objectId)?.name ?? `object ${objectId}`;
  return { layer: entry.layer, message: `${kind} map of ${name} (bright = close)` };
}
