/** Toolbar, side panel and status bar of a view: event wiring and keeping them in line with state. */
import { clearFrame, redo, undo } from "./actions";
import { renderObjects } from "./controls";
import { drawTimeline } from "./timeline";
import type { Direction } from "./protocol";
import { describeRange, rangeSpan } from "./range";
import { TOOLS, type AutosaveState } from "./traits";
import type { AnnotatorView } from "./view";

const EXPORT_DEFAULTS: Record<string, string> = {
  png: "masks_png", npz: "masks.npz", coco: "masks_coco.json", video: "overlay.mp4",
};

/** Wire every control to the view; returns a function that unwires the resize observer. */
export function bindControls(v: AnnotatorView): () => void {
  const u = v.ui;
  const click = (b: HTMLButtonElement, f: () => void): void => b.addEventListener("click", f);
  for (const tool of TOOLS) click(u.tools[tool], () => v.set("tool", tool));
  click(u.apply, () => v.apply());
  click(u.run, () => v.run());
  click(u.cancel, () => v.send({ type: "cancel" }));
  click(u.undoRound, () => v.send({ type: "undo" }));
  click(u.rangeFrom, () => v.setRangeEnd("start"));
  click(u.rangeTo, () => v.setRangeEnd("stop"));
  click(u.rangeClear, () => v.setRange(-1, -1));
  u.direction.addEventListener("change", () => v.set("propagation_direction", u.direction.value as Direction));
  click(u.undoStroke, () => undo(v));
  click(u.redoStroke, () => redo(v));
  click(u.clearFrame, () => clearFrame(v));
  click(u.fit, () => { v.view.fit(); v.invalidate(); });
  click(u.prev, () => v.setFrame(v.frame - 1));
  click(u.next, () => v.setFrame(v.frame + 1));
  click(u.play, () => v.togglePlay());
  click(u.addObject, () => v.addObject());
  click(u.errorClose, () => { u.errorBanner.hidden = true; v.set("error", ""); });
  click(u.exportButton, () => v.send({
    type: "export", format: u.exportFormat.value as "png", path: u.exportPath.value.trim(),
  }));
  u.exportPath.value = EXPORT_DEFAULTS.png!;
  u.exportFormat.addEventListener("change", () => { u.exportPath.value = EXPORT_DEFAULTS[u.exportFormat.value] ?? ""; });
  u.brush.addEventListener("input", () => v.set("brush_radius", Number(u.brush.value)));
  u.opacity.addEventListener("input", () => v.set("overlay_opacity", Number(u.opacity.value)));
  u.mode.addEventListener("change", () => v.set("overlay_mode", u.mode.value as "fill"));
  u.mapSelect.addEventListener("change", () => v.set("map_overlay", u.mapSelect.value as "none"));
  u.history.addEventListener("click", (event) => {
    const item = (event.target as HTMLElement).closest("li");
    if (item?.dataset.frame !== undefined) v.setFrame(Number(item.dataset.frame));
  });
  if (typeof ResizeObserver === "undefined") return () => undefined;
  const observer = new ResizeObserver(() => v.resize());
  observer.observe(u.canvasBox);
  return () => observer.disconnect();
}

const RUNNING = new Set(["running", "propagating", "cancelling", "preparing"]);
const AUTOSAVE_TEXT: Record<AutosaveState, string> = {
  off: "", ready: "autosave on", saving: "saving…", saved: "saved", error: "autosave failed",
};

/** Bring buttons, sliders, labels, progress and the error banner in line with the traits. */
export function syncControls(v: AnnotatorView): void {
  const u = v.ui;
  const status = v.get("status");
  const prompts = v.prompts.count(v.frame);
  const rounds = v.get("round_index");
  const painting = v.painting;
  const tool = v.get("tool");
  for (const t of TOOLS) u.tools[t].setAttribute("aria-pressed", String(t === tool));
  u.apply.hidden = !painting;
  u.apply.disabled = v.busy || !v.paint.edited(v.frame);
  u.run.disabled = v.busy || prompts === 0;
  u.cancel.disabled = !(status === "running" || status === "propagating");
  u.undoRound.disabled = v.busy || !v.get("can_undo");
  u.rangeClear.disabled = rangeSpan(v.range) === null;
  u.rangeLabel.textContent = describeRange(v.range);
  u.direction.value = v.get("propagation_direction");
  u.undoStroke.disabled = painting ? !v.paint.canUndo(v.frame) : !v.prompts.canUndo(v.frame);
  u.redoStroke.disabled = painting ? !v.paint.canRedo(v.frame) : !v.prompts.canRedo(v.frame);
  u.clearFrame.disabled = painting ? !v.paint.has(v.frame) : prompts === 0;
  u.exportButton.disabled = v.busy || rounds === 0;
  u.play.textContent = v.playing ? "❚❚" : "▶";
  const radius = v.get("brush_radius");
  u.brush.max = String(Math.max(60, Math.ceil(radius)));
  u.brush.value = String(radius);
  u.brushLabel.textContent = `${radius.toFixed(radius < 10 ? 1 : 0)}px`;
  const opacity = v.get("overlay_opacity");
  u.opacity.value = String(opacity);
  u.opacityLabel.textContent = `${Math.round(opacity * 100)}%`;
  u.mode.value = v.get("overlay_mode");
  u.mapSelect.value = v.get("map_overlay");
  u.frameLabel.textContent = `${v.frame + 1} / ${v.get("num_frames")}`;
  const progress = v.get("progress");
  const running = RUNNING.has(status);
  u.progress.hidden = !(running && progress.total > 0);
  u.progressBar.style.width = `${progress.total > 0 ? (100 * progress.done) / progress.total : 0}%`;
  const what = status === "idle" ? "ready" : status === "preparing" ? "computing embeddings" : status;
  const count = running && progress.total > 0 ? ` ${progress.done}/${progress.total}` : "";
  u.statusText.textContent = `${what}${count} · round ${rounds}`;
  const autosave = v.get("autosave_state") ?? "off";
  u.autosave.textContent = AUTOSAVE_TEXT[autosave] ?? "";
  u.autosave.dataset.state = autosave;
  u.autosave.title = v.get("autosave_path") ? `autosave folder: ${v.get("autosave_path")}` : "";
  u.root.dataset.status = status;
  u.root.dataset.frame = String(v.frame);
  const error = v.get("error");
  if (error) {
    u.errorText.textContent = error;
    u.errorBanner.hidden = false;
  } else if (u.errorText.textContent === u.errorBanner.dataset.traitError) {
    u.errorBanner.hidden = true;
  }
  u.errorBanner.dataset.traitError = error;
  v.timelineSoon();
}

/** Rebuild the objects list and round history (not on every status tick: a rename may be open). */
export function renderLists(v: AnnotatorView): void {
  renderObjects(v.ui.objectList, v.get("objects"), v.get("active_object"), {
    select: (id) => v.set("active_object", id),
    rename: (id, name) => v.send({ type: "rename_object", object_id: id, name }),
    remove: (id) => v.send({ type: "delete_object", object_id: id }),
  });
  const list = v.ui.history;
  list.replaceChildren();
  const item = (text: string, frame: number | null, className = ""): void => {
    const li = document.createElement("li");
    li.className = className;
    li.textContent = text;
    if (frame !== null) {
      li.dataset.frame = String(frame);
      li.title = `Go to frame ${frame + 1}`;
    }
    list.appendChild(li);
  };
  const history = v.get("round_history");
  if (history.length === 0) item("no rounds yet", null, "manet-empty");
  for (const r of history) item(`frame ${r.frame + 1} · ${describePrompts(r)} · ${r.seconds.toFixed(1)}s`, r.frame);
  const suggested = v.get("suggested_frame");
  if (suggested >= 0) item(`next: frame ${suggested + 1} (s)`, suggested, "manet-suggested");
}

/** "2 strokes · 1 click · 1 box", or "painted mask", for one round of the history. */
export function describePrompts(r: { strokes: number; clicks?: number; boxes?: number; mask?: boolean }): string {
  if (r.mask) return "painted mask";
  const parts: string[] = [];
  const count = (n: number, word: string): void => {
    if (n > 0) parts.push(`${n} ${word}${n === 1 ? "" : word.endsWith("x") ? "es" : "s"}`);
  };
  count(r.strokes, "stroke");
  count(r.clicks ?? 0, "click");
  count(r.boxes ?? 0, "box");
  return parts.length > 0 ? parts.join(" · ") : "no prompts";
}

/** Draw the timeline canvas at its current CSS width. */
export function paintTimeline(v: AnnotatorView): void {
  const canvas = v.ui.timeline;
  const width = Math.max(100, canvas.clientWidth || 400);
  const height = 34;
  const dpr = globalThis.devicePixelRatio || 1;
  if (canvas.width !== Math.round(width * dpr)) canvas.width = Math.round(width * dpr);
  canvas.height = Math.round(height * dpr);
  const ctx = canvas.getContext("2d");
  if (ctx === null) return;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  drawTimeline(ctx, width, height, {
    numFrames: v.get("num_frames"),
    current: v.frame,
    annotated: v.get("annotated_frames"),
    suggested: v.get("suggested_frame"),
    withStrokes: [...v.prompts.framesWithPrompts(), ...v.paint.editedFrames()],
    pending: v.masks.pendingFrames(),
    range: timelineRange(v),
    colors: {
      track: v.themeColor("--jp-layout-color3", "#bdbdbd"),
      fill: v.themeColor("--jp-brand-color1", "#1976d2"),
      accent: v.themeColor("--jp-warn-color0", "#f57c00"),
      text: v.themeColor("--jp-ui-font-color1", "#333333"),
      marker: v.themeColor("--jp-ui-font-color2", "#757575"),
      pending: v.themeColor("--jp-brand-color3", "#90caf9"),
    },
  });
}

/** The propagation range drawn on the timeline: the running round's, else the one set (null: all frames). */
function timelineRange(v: AnnotatorView): { start: number; stop: number } | null {
  return v.rounds.range ?? rangeSpan(v.range);
}
