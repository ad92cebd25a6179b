/** DOM of the annotator: toolbar, canvas area, side panel, timeline and status bar. */
import { SHORTCUTS } from "./keyboard";
import { TOOLS, type Tool } from "./traits";

export interface Controls {
  root: HTMLDivElement;
  canvasBox: HTMLDivElement;
  canvas: HTMLCanvasElement;
  timeline: HTMLCanvasElement;
  frameLabel: HTMLSpanElement;
  play: HTMLButtonElement;
  prev: HTMLButtonElement;
  next: HTMLButtonElement;
  tools: Record<Tool, HTMLButtonElement>;
  apply: HTMLButtonElement;
  run: HTMLButtonElement;
  cancel: HTMLButtonElement;
  undoRound: HTMLButtonElement;
  rangeFrom: HTMLButtonElement;
  rangeTo: HTMLButtonElement;
  rangeClear: HTMLButtonElement;
  rangeLabel: HTMLSpanElement;
  direction: HTMLSelectElement;
  undoStroke: HTMLButtonElement;
  redoStroke: HTMLButtonElement;
  clearFrame: HTMLButtonElement;
  fit: HTMLButtonElement;
  brush: HTMLInputElement;
  brushLabel: HTMLSpanElement;
  opacity: HTMLInputElement;
  opacityLabel: HTMLSpanElement;
  mode: HTMLSelectElement;
  mapSelect: HTMLSelectElement;
  objectList: HTMLDivElement;
  addObject: HTMLButtonElement;
  history: HTMLOListElement;
  exportFormat: HTMLSelectElement;
  exportPath: HTMLInputElement;
  exportButton: HTMLButtonElement;
  statusText: HTMLSpanElement;
  autosave: HTMLSpanElement;
  progress: HTMLDivElement;
  progressBar: HTMLDivElement;
  errorBanner: HTMLDivElement;
  errorText: HTMLSpanElement;
  errorClose: HTMLButtonElement;
  hint: HTMLDivElement;
  help: HTMLDivElement;
}

function make<K extends keyof HTMLElementTagNameMap>(
  tag: K, className: string, parent?: HTMLElement, text?: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  parent?.appendChild(node);
  return node;
}

function button(parent: HTMLElement, label: string, title: string, extra = ""): HTMLButtonElement {
  const b = make("button", `manet-btn ${extra}`.trim(), parent, label);
  b.type = "button";
  b.title = title;
  b.setAttribute("aria-label", title);
  return b;
}

function slider(parent: HTMLElement, label: string, min: number, max: number, step: number): [HTMLInputElement, HTMLSpanElement] {
  const box = make("label", "manet-slider", parent);
  make("span", "manet-slider-name", box, label);
  const input = make("input", "", box);
  input.type = "range";
  input.min = String(min);
  input.max = String(max);
  input.step = String(step);
  const value = make("span", "manet-slider-value", box);
  return [input, value];
}

function select(parent: HTMLElement, title: string, options: readonly [string, string][]): HTMLSelectElement {
  const s = make("select", "manet-select", parent);
  s.title = title;
  for (const [value, label] of options) {
    const o = make("option", "", s, label);
    o.value = value;
  }
  return s;
}

const TOOL_LABELS: Record<Tool, [string, string]> = {
  scribble: ["✎ Scribble", "Scribble: drag to draw strokes; right button = background (d)"],
  click: ["◉ Click", "Click: a point on the object; right click = background point (k)"],
  box: ["▭ Box", "Box: drag a box around the selected object, one per object (r, or Shift+drag)"],
  paint: ["▦ Paint", "Paint the selected object into this frame's mask, then Apply (n)"],
  erase: ["◌ Erase", "Erase the selected object from this frame's mask, then Apply (e)"],
};

export function buildControls(el: HTMLElement): Controls {
  const root = make("div", "manet-annotator", el);
  root.tabIndex = 0;
  root.setAttribute("role", "application");
  root.setAttribute("aria-label", "video annotator");
  // Lumino stops matching key bindings at this attribute. Notebook 7 listens for shortcuts in the
  // capture phase, where stopping propagation on the root comes too late.
  root.setAttribute("data-lm-suppress-shortcuts", "true");
  root.setAttribute("data-jp-suppress-context-menu", "true"); // right click = background prompt

  const toolbar = make("div", "manet-toolbar", root);
  const toolGroup = make("div", "manet-group manet-tools", toolbar);
  toolGroup.setAttribute("role", "group");
  toolGroup.setAttribute("aria-label", "tools");
  const tools = {} as Record<Tool, HTMLButtonElement>;
  for (const tool of TOOLS) {
    const [label, title] = TOOL_LABELS[tool];
    tools[tool] = button(toolGroup, label, title);
    tools[tool].dataset.tool = tool;
  }
  const apply = button(toolGroup, "✓ Apply",
    "Apply the painted mask: it becomes this frame's result and propagates (Enter)", "manet-primary");
  const rounds = make("div", "manet-group", toolbar);
  const run = button(rounds, "▶ Run", "Run a round with the strokes, clicks and boxes on this frame (Enter)",
    "manet-primary");
  const cancel = button(rounds, "■ Cancel", "Stop the propagation; the previous round stays (Esc)");
  const undoRound = button(rounds, "↶ Undo", "Undo the last round or object deletion");
  const edit = make("div", "manet-group", toolbar);
  const undoStroke = button(edit, "↶", "Undo (Ctrl+Z)");
  const redoStroke = button(edit, "↷", "Redo (Ctrl+Shift+Z)");
  const clearFrame = button(edit, "✕ Clear", "Clear this frame's prompts, or drop its painting (c)");
  const look = make("div", "manet-group", toolbar);
  const [brush, brushLabel] = slider(look, "brush", 1, 60, 0.5);
  const [opacity, opacityLabel] = slider(look, "opacity", 0, 1, 0.05);
  const mode = select(look, "Overlay style (o)", [["fill", "fill"], ["outline", "outline"]]);
  const mapSelect = select(look, "Matching-map overlay of the selected object (m)", [
    ["none", "no map"], ["global", "global map"], ["local", "local map"], ["augmented", "augmented map"],
  ]);
  const fit = button(look, "⤢", "Fit the frame in view (f)");

  const main = make("div", "manet-main", root);
  const canvasBox = make("div", "manet-canvas-box", main);
  const canvas = make("canvas", "manet-canvas", canvasBox);
  const hint = make("div", "manet-hint", canvasBox);
  const help = make("div", "manet-help", canvasBox);
  help.hidden = true;
  const table = make("table", "", help);
  for (const [keys, what] of SHORTCUTS) {
    const row = make("tr", "", table);
    make("td", "manet-keys", row, keys);
    make("td", "", row, what);
  }

  const side = make("div", "manet-side", main);
  make("div", "manet-heading", side, "Objects");
  const objectList = make("div", "manet-objects", side);
  const addObject = button(side, "+ object", "Add an object", "manet-add");
  make("div", "manet-heading", side, "Rounds");
  const history = make("ol", "manet-history", side);
  make("div", "manet-heading", side, "Export");
  const exportBox = make("div", "manet-export", side);
  const exportFormat = select(exportBox, "Export format", [
    ["png", "PNG masks"], ["npz", "NumPy .npz"], ["coco", "COCO json"], ["video", "overlay video"],
  ]);
  const exportPath = make("input", "manet-path", exportBox);
  exportPath.type = "text";
  exportPath.title = "Path on the kernel's machine";
  const exportButton = button(exportBox, "Save", "Export the masks of the last round");

  const timeRow = make("div", "manet-timerow", root);
  const prev = button(timeRow, "◀", "Previous frame (←)");
  const play = button(timeRow, "▶", "Play / pause (p)");
  const next = button(timeRow, "▶|", "Next frame (→)");
  const timeline = make("canvas", "manet-timeline", timeRow);
  const frameLabel = make("span", "manet-frame-label", timeRow);
  const rangeRow = make("div", "manet-range", root);
  rangeRow.setAttribute("role", "group");
  rangeRow.setAttribute("aria-label", "propagation range");
  make("span", "manet-range-name", rangeRow, "propagate");
  const rangeLabel = make("span", "manet-range-label", rangeRow);
  const rangeFrom = button(rangeRow, "⇤ from here", "Rounds recompute frames from this one on (or Shift+drag on the timeline)");
  const rangeTo = button(rangeRow, "to here ⇥", "Propagate to here: rounds recompute frames up to this one");
  const rangeClear = button(rangeRow, "all frames", "Rounds recompute every frame");
  const direction = select(rangeRow, "Direction of propagation from the annotated frame", [
    ["both", "both ways"], ["forward", "forward"], ["backward", "backward"],
  ]);

  const statusRow = make("div", "manet-status", root);
  const statusText = make("span", "manet-status-text", statusRow);
  const progress = make("div", "manet-progress", statusRow);
  const progressBar = make("div", "manet-progress-bar", progress);
  const autosave = make("span", "manet-autosave", statusRow);
  make("span", "manet-help-hint", statusRow, "? shortcuts");
  const errorBanner = make("div", "manet-error", root);
  errorBanner.setAttribute("role", "alert");
  const errorText = make("span", "", errorBanner);
  const errorClose = button(errorBanner, "×", "Dismiss");
  errorBanner.hidden = true;

  return {
    root, canvasBox, canvas, timeline, frameLabel, play, prev, next, tools, apply, run, cancel, undoRound, rangeFrom,
    rangeTo, rangeClear, rangeLabel, direction, undoStroke,
    redoStroke, clearFrame, fit, brush, brushLabel, opacity, opacityLabel, mode, mapSelect, objectList, addObject, history,
    exportFormat, exportPath, exportButton, statusText, autosave, progress, progressBar, errorBanner, errorText,
    errorClose, hint, help,
  };
}

export interface ObjectRowHandlers {
  select(id: number): void;
  rename(id: number, name: string): void;
  remove(id: number): void;
}

/** Rebuild the objects list (background row first). */
export function renderObjects(
  list: HTMLDivElement, objects: readonly { id: number; name: string; color: string }[], active: number,
  handlers: ObjectRowHandlers,
): void {
  list.replaceChildren();
  const rows: { id: number; name: string; color: string; key: string }[] = [
    { id: 0, name: "background", color: "#9e9e9e", key: "0" },
    ...objects.map((o, i) => ({ ...o, key: i < 9 ? String(i + 1) : "" })),
  ];
  for (const o of rows) {
    const row = make("div", `manet-object${o.id === active ? " manet-active" : ""}`, list);
    row.dataset.objectId = String(o.id);
    const swatch = make("span", "manet-swatch", row);
    swatch.style.background = o.color;
    const name = make("span", "manet-object-name", row, o.name);
    make("span", "manet-key", row, o.key);
    row.addEventListener("click", () => handlers.select(o.id));
    if (o.id === 0) continue;
    name.title = "Double-click to rename";
    name.addEventListener("dblclick", (event) => {
      event.stopPropagation();
      const input = document.createElement("input");
      input.className = "manet-rename";
      input.value = o.name;
      name.replaceWith(input);
      input.focus();
      input.select();
      let done = false;
      const finish = (commit: boolean): void => {
        if (done) return;
        done = true;
        if (commit && input.value.trim() && input.value !== o.name) handlers.rename(o.id, input.value.trim());
        input.replaceWith(name);
      };
      input.addEventListener("keydown", (e) => {
        if (e.key === "Enter") finish(true);
        if (e.key === "Escape") finish(false);
      });
      input.addEventListener("blur", () => finish(true));
    });
    const remove = button(row, "×", `Delete ${o.name}`, "manet-remove");
    remove.addEventListener("click", (event) => {
      event.stopPropagation();
      handlers.remove(o.id);
    });
  }
}
