import { describe, expect, it } from "vitest";
import { unzlibSync, zlibSync } from "fflate";
import { decodeRun, type OutgoingMessage } from "../protocol";
import { boxFrom } from "../tools";
import { key, type FakeModel, nextFrame, pointer, setup, useCanvasMock } from "./harness";

useCanvasMock();

/** Zoom 2.5x about a point and pan, so screen and image pixels differ by more than a scale. */
function zoomed(overrides = {}): ReturnType<typeof setup> {
  const made = setup(overrides);
  made.view.view.zoomAt(130, 90, 2.5);
  made.view.view.panBy(-17, 9);
  return made;
}

function sentRun(model: FakeModel): { content: Extract<OutgoingMessage, { type: "run" }>; buffer: ArrayBuffer } {
  const sent = model.sent.filter((s) => s.content.type === "run");
  expect(sent).toHaveLength(1);
  return { content: sent[0]!.content as Extract<OutgoingMessage, { type: "run" }>, buffer: sent[0]!.buffers![0]! };
}

function committedMask(model: FakeModel, ids: Uint8Array): void {
  model.receive({ type: "mask", index: 0, version: 1, pending: false,
    header: { dtype: "uint8", shape: [60, 80], encoding: "zlib" } }, [zlibSync(ids)]);
}

describe("click tool", () => {
  it("adds positive and negative clicks at the image point under the pointer, at any zoom", () => {
    const { model, view } = zoomed({ click_radius: 1.2 });
    key(view.ui.root, "k");
    expect(model.traits.tool).toBe("click");
    pointer(view.ui.canvas, "pointerdown", 150, 100, { button: 0 });
    pointer(view.ui.canvas, "pointerup", 150, 100, { button: 0 });
    pointer(view.ui.canvas, "pointerdown", 210, 140, { button: 2 });
    pointer(view.ui.canvas, "pointerup", 210, 140, { button: 2 });
    key(view.ui.root, "b");
    pointer(view.ui.canvas, "pointerdown", 250, 60, { button: 0 });
    pointer(view.ui.canvas, "pointerup", 250, 60, { button: 0 });
    const clicks = view.prompts.get(0);
    expect(clicks.map((c) => [c.objectId, c.kind, c.radius])).toEqual([[1, "click", 1.2], [0, "click", 1.2], [0, "click", 1.2]]);
    const expected = [[150, 100], [210, 140], [250, 60]].map(([x, y]) => view.view.toImage(x!, y!));
    clicks.forEach((c, i) => {
      expect(c.points[0]).toBeCloseTo(expected[i]![0], 6);
      expect(c.points[1]).toBeCloseTo(expected[i]![1], 6);
    });
    key(view.ui.root, "Enter");
    const { content, buffer } = sentRun(model);
    expect(content.strokes.map((s) => [s.object_id, s.kind, s.count, s.radius])).toEqual(
      [[1, "click", 1, 1.2], [0, "click", 1, 1.2], [0, "click", 1, 1.2]]);
    decodeRun(content.strokes, buffer).forEach((c, i) => {
      expect(c.points[0]).toBeCloseTo(expected[i]![0], 4);
      expect(c.points[1]).toBeCloseTo(expected[i]![1], 4);
    });
  });

  it("ignores presses outside the frame", () => {
    const { view } = setup({ tool: "click" });
    view.view.panBy(100, 0); // the frame now starts 100 px right of the canvas edge
    pointer(view.ui.canvas, "pointerdown", 3, 3, { button: 0 });
    pointer(view.ui.canvas, "pointerup", 3, 3, { button: 0 });
    pointer(view.ui.canvas, "pointerdown", 103, 3, { button: 0 });
    pointer(view.ui.canvas, "pointerup", 103, 3, { button: 0 });
    expect(view.view.contains(...view.view.toImage(3, 3))).toBe(false);
    expect(view.prompts.get(0).map((c) => c.points)).toEqual([[view.view.toImage(103, 3)[0], view.view.toImage(103, 3)[1]]]);
  });
});

describe("box tool", () => {
  it("drags a box in image pixels (Shift+drag from any prompt tool), one per object", () => {
    const { model, view } = zoomed();
    pointer(view.ui.canvas, "pointerdown", 300, 200, { button: 0, shiftKey: true });
    pointer(view.ui.canvas, "pointermove", 200, 150, { buttons: 1, shiftKey: true });
    expect(view.gesture?.preview?.().box).toBeDefined(); // drawn while dragging
    pointer(view.ui.canvas, "pointermove", 120, 90, { buttons: 1, shiftKey: true });
    pointer(view.ui.canvas, "pointerup", 120, 90, { shiftKey: true });
    const [a, b] = [view.view.toImage(300, 200), view.view.toImage(120, 90)];
    const [box] = view.prompts.boxes(0);
    expect(box!.objectId).toBe(1);
    expect(box!.x0).toBeCloseTo(b[0], 6);
    expect(box!.y0).toBeCloseTo(b[1], 6);
    expect(box!.x1).toBeCloseTo(a[0], 6);
    expect(box!.y1).toBeCloseTo(a[1], 6);
    expect(view.gesture).toBeNull();
    expect(view.prompts.get(0)).toHaveLength(0); // Shift+drag drew no stroke

    key(view.ui.root, "r");
    pointer(view.ui.canvas, "pointerdown", 100, 100, { button: 0 });
    pointer(view.ui.canvas, "pointerup", 160, 170);
    expect(view.prompts.boxes(0)).toHaveLength(1); // replaced, not added
    expect(view.prompts.boxes(0)[0]!.x0).toBeCloseTo(view.view.toImage(100, 100)[0], 6);
    key(view.ui.root, "z", { ctrlKey: true });
    expect(view.prompts.boxes(0)[0]!.x0).toBeCloseTo(b[0], 6);
    key(view.ui.root, "Enter");
    const { content } = sentRun(model);
    expect(content.strokes).toEqual([]);
    expect(content.boxes).toEqual([{ object_id: 1, x0: box!.x0, y0: box!.y0, x1: box!.x1, y1: box!.y1 }]);
  });

  it("refuses boxes for the background and slips shorter than two pixels", () => {
    const { view } = setup({ tool: "box", active_object: 0 });
    pointer(view.ui.canvas, "pointerdown", 100, 100, { button: 0 });
    pointer(view.ui.canvas, "pointerup", 300, 300);
    expect(view.ui.hint.textContent).toContain("select one with 1-9");
    key(view.ui.root, "1");
    pointer(view.ui.canvas, "pointerdown", 100, 100, { button: 0 });
    pointer(view.ui.canvas, "pointerup", 105, 105); // 5 screen px = 0.6 image px at scale 8
    expect(view.prompts.boxes(0)).toEqual([]);
    expect(boxFrom(2, 90, -4, 10, 70, 80, 60)).toEqual({ objectId: 2, x0: 10, y0: 0, x1: 80, y1: 60 });
  });

  it("sends strokes, clicks and boxes of a frame together in one run message", () => {
    const { model, view } = setup();
    pointer(view.ui.canvas, "pointerdown", 100, 100, { button: 0 });
    pointer(view.ui.canvas, "pointermove", 140, 120, { buttons: 1 });
    pointer(view.ui.canvas, "pointerup", 140, 120);
    view.set("tool", "click");
    pointer(view.ui.canvas, "pointerdown", 300, 200, { button: 2 });
    pointer(view.ui.canvas, "pointerup", 300, 200, { button: 2 });
    pointer(view.ui.canvas, "pointerdown", 400, 300, { button: 0, shiftKey: true });
    pointer(view.ui.canvas, "pointerup", 500, 380, { shiftKey: true });
    view.ui.run.click();
    const { content } = sentRun(model);
    expect(content.strokes.map((s) => [s.kind, s.object_id])).toEqual([["stroke", 1], ["click", 0]]);
    expect(content.boxes!.map((b) => b.object_id)).toEqual([1]);
    model.receive({ type: "round_started", round: 1, frame: 0, start: 0, stop: 9 });
    model.receive({ type: "round_finished", round: 1, version: 1 });
    expect(view.prompts.count(0)).toBe(0);
  });
});

describe("paint tools", () => {
  it("paint and erase the shown mask of the selected object, undo, and Apply sends the edited ids", async () => {
    const { model, view } = zoomed({ round_index: 1, mask_version: 1, brush_radius: 2 });
    const committed = new Uint8Array(80 * 60);
    committed.fill(2, 0, 80 * 10); // object 2 in the top 10 rows
    committed.fill(1, 80 * 30, 80 * 40); // object 1 in rows 30..39
    committedMask(model, committed);
    key(view.ui.root, "n");
    expect(view.ui.apply.hidden).toBe(false);
    expect(view.ui.apply.disabled).toBe(true);
    const [sx, sy] = view.view.toScreen(20.5, 20.5);
    pointer(view.ui.canvas, "pointerdown", sx, sy, { button: 0 });
    pointer(view.ui.canvas, "pointermove", ...view.view.toScreen(40.5, 20.5), { buttons: 1 });
    pointer(view.ui.canvas, "pointerup", ...view.view.toScreen(40.5, 20.5));
    const painted = view.paint.ids(0)!;
    expect(painted[20 * 80 + 20]).toBe(1);
    expect(painted[20 * 80 + 40]).toBe(1);
    expect(painted[20 * 80 + 30]).toBe(1);
    expect(painted[20 * 80 + 43]).toBe(0); // beyond the brush
    expect(committed[20 * 80 + 30]).toBe(0); // the committed mask is untouched
    expect(view.ui.apply.disabled).toBe(false);

    key(view.ui.root, "e");
    pointer(view.ui.canvas, "pointerdown", ...view.view.toScreen(10.5, 35.5), { button: 0 });
    pointer(view.ui.canvas, "pointerup", ...view.view.toScreen(10.5, 35.5));
    expect(painted[35 * 80 + 10]).toBe(0);
    pointer(view.ui.canvas, "pointerdown", ...view.view.toScreen(10.5, 5.5), { button: 0 });
    pointer(view.ui.canvas, "pointerup", ...view.view.toScreen(10.5, 5.5));
    expect(painted[5 * 80 + 10]).toBe(2); // the eraser spares other objects
    key(view.ui.root, "z", { ctrlKey: true });
    expect(painted[35 * 80 + 10]).toBe(1);
    key(view.ui.root, "z", { ctrlKey: true, shiftKey: true });
    expect(painted[35 * 80 + 10]).toBe(0);
    expect(view.prompts.count(0)).toBe(0); // painting adds no prompts

    const expected = painted.slice();
    key(view.ui.root, "Enter");
    const sent = model.sent.filter((s) => s.content.type === "apply_mask");
    expect(sent).toHaveLength(1);
    expect(sent[0]!.content).toEqual({ type: "apply_mask", frame: 0,
      header: { dtype: "uint8", shape: [60, 80], encoding: "zlib" } });
    expect(unzlibSync(new Uint8Array(sent[0]!.buffers![0]!))).toEqual(expected);
    expect(model.ofType("run")).toHaveLength(0);
    model.receive({ type: "round_started", round: 2, frame: 0, start: 0, stop: 9 });
    model.receive({ type: "round_finished", round: 2, version: 2 });
    expect(view.paint.has(0)).toBe(false);
    await nextFrame();
  });

  it("shows the painting on the canvas only with a paint tool, and waits for an unloaded mask", async () => {
    const { model, view } = setup({ round_index: 1, mask_version: 1, tool: "paint" });
    pointer(view.ui.canvas, "pointerdown", 320, 240, { button: 0 });
    pointer(view.ui.canvas, "pointerup", 320, 240);
    expect(view.ui.hint.textContent).toContain("still loading");
    expect(view.paint.has(0)).toBe(false);
    committedMask(model, new Uint8Array(80 * 60));
    pointer(view.ui.canvas, "pointerdown", 320, 240, { button: 0 });
    pointer(view.ui.canvas, "pointerup", 320, 240);
    expect(view.paint.edited(0)).toBe(true);
    view.set("tool", "scribble");
    expect(view.ui.apply.hidden).toBe(true);
    key(view.ui.root, "c"); // clears prompts, keeps the painting
    expect(view.paint.edited(0)).toBe(true);
    view.set("tool", "erase");
    key(view.ui.root, "c");
    expect(view.paint.has(0)).toBe(false);
    expect(view.ui.hint.textContent).toContain("painting dropped");
    await nextFrame();
  });

  it("lists every tool in the toolbar and the help, and marks the selected one", () => {
    const { model, view } = setup();
    expect(view.ui.tools.scribble.getAttribute("aria-pressed")).toBe("true");
    view.ui.tools.box.click();
    expect(model.traits.tool).toBe("box");
    expect(view.ui.tools.box.getAttribute("aria-pressed")).toBe("true");
    expect(view.ui.tools.scribble.getAttribute("aria-pressed")).toBe("false");
    const help = view.ui.help.textContent ?? "";
    for (const word of ["Scribble", "click tool", "box tool", "paint / erase"]) expect(help.toLowerCase()).toContain(word.toLowerCase());
  });
});

describe("status bar", () => {
  it("shows the autosave state", () => {
    const { model, view } = setup({ autosave_state: "ready", autosave_path: "/tmp/session" });
    expect(view.ui.autosave.textContent).toBe("autosave on");
    model.set("status", "saving");
    model.set("autosave_state", "saving");
    expect(view.ui.autosave.textContent).toBe("saving…");
    expect(view.busy).toBe(false); // a Run queues behind the save in the kernel
    model.set("autosave_state", "saved");
    model.set("status", "idle");
    expect(view.ui.autosave.textContent).toBe("saved");
    expect(view.ui.autosave.title).toContain("/tmp/session");
  });
});
