import { describe, expect, it, vi } from "vitest";
import { zlibSync } from "fflate";
import { decodeRun, type OutgoingMessage } from "../protocol";
import { key, nextFrame, pointer, setup, useCanvasMock } from "./harness";

useCanvasMock();

describe("AnnotatorView", () => {
  it("asks for the first frame and lists the objects with a background row", () => {
    const { model, view } = setup();
    expect(model.ofType("request_frame")[0]).toEqual({ type: "request_frame", index: 0 });
    const rows = [...view.ui.objectList.querySelectorAll<HTMLElement>(".manet-object")];
    expect(rows.map((r) => r.dataset.objectId)).toEqual(["0", "1", "2"]);
    expect(rows[1]!.classList.contains("manet-active")).toBe(true);
    expect(view.ui.run.disabled).toBe(true);
  });

  it("captures a stroke in image pixels under zoom and sends it on Enter", () => {
    const { model, view } = setup();
    view.view.zoomAt(100, 50, 2);
    view.view.panBy(-10, 5);
    const screen: [number, number][] = [[120, 60], [140, 70], [160, 90]];
    pointer(view.ui.canvas, "pointerdown", ...screen[0]!, { button: 0 });
    pointer(view.ui.canvas, "pointermove", ...screen[1]!, { buttons: 1 });
    pointer(view.ui.canvas, "pointermove", ...screen[2]!, { buttons: 1 });
    pointer(view.ui.canvas, "pointerup", ...screen[2]!);
    expect(view.ui.run.disabled).toBe(false);
    key(view.ui.root, "Enter");
    key(view.ui.root, "Enter"); // a second Enter before the kernel answers sends nothing
    expect(model.ofType("run")).toHaveLength(1);
    const sent = model.sent.find((s) => s.content.type === "run")!;
    const content = sent.content as Extract<OutgoingMessage, { type: "run" }>;
    expect(content.frame).toBe(0);
    const [stroke] = decodeRun(content.strokes, sent.buffers![0]!);
    expect(stroke!.objectId).toBe(1);
    expect(stroke!.radius).toBe(4);
    const expected = screen.flatMap(([x, y]) => view.view.toImage(x, y));
    stroke!.points.forEach((value, i) => expect(value).toBeCloseTo(expected[i]!, 4));
  });

  it("draws background with the right button and pans with Space + drag", () => {
    const { view } = setup();
    pointer(view.ui.canvas, "pointerdown", 100, 100, { button: 2 });
    pointer(view.ui.canvas, "pointerup", 100, 100, { button: 2 });
    expect(view.prompts.get(0).map((s) => s.objectId)).toEqual([0]);
    const before = view.view.offsetX;
    key(view.ui.root, " ");
    pointer(view.ui.canvas, "pointerdown", 100, 100, { button: 0 });
    pointer(view.ui.canvas, "pointermove", 130, 100, { buttons: 1 });
    pointer(view.ui.canvas, "pointerup", 130, 100);
    view.ui.root.dispatchEvent(new KeyboardEvent("keyup", { key: " ", bubbles: true }));
    expect(view.view.offsetX).toBeCloseTo(before + 30);
    expect(view.prompts.get(0)).toHaveLength(1);
  });

  it("keeps key events from reaching JupyterLab and steps frames", () => {
    const { model, view } = setup();
    const outside = vi.fn();
    document.addEventListener("keydown", outside);
    const event = key(view.ui.root, "ArrowRight");
    document.removeEventListener("keydown", outside);
    expect(outside).not.toHaveBeenCalled();
    expect(event.defaultPrevented).toBe(true);
    expect(view.frame).toBe(1);
    expect(model.ofType("request_frame").map((m) => m.index)).toContain(1);
    key(view.ui.root, "2");
    expect(model.traits.active_object).toBe(2);
    key(view.ui.root, "b");
    expect(model.traits.active_object).toBe(0);
  });

  it("does not treat typing in the export path as shortcuts", () => {
    const { view } = setup();
    const typed = key(view.ui.exportPath, "2");
    expect(typed.defaultPrevented).toBe(false);
    expect(view.get("active_object")).toBe(1);
  });

  it("undoes and redoes strokes before a round with Ctrl+Z / Ctrl+Shift+Z", () => {
    const { view } = setup();
    pointer(view.ui.canvas, "pointerdown", 50, 50, { button: 0 });
    pointer(view.ui.canvas, "pointerup", 50, 50);
    key(view.ui.root, "z", { ctrlKey: true });
    expect(view.prompts.get(0)).toHaveLength(0);
    key(view.ui.root, "Z", { ctrlKey: true, shiftKey: true });
    expect(view.prompts.get(0)).toHaveLength(1);
    key(view.ui.root, "c");
    expect(view.prompts.get(0)).toHaveLength(0);
  });

  it("draws streamed masks, then commits them and forgets the run strokes", async () => {
    const { model, view } = setup();
    pointer(view.ui.canvas, "pointerdown", 50, 50, { button: 0 });
    pointer(view.ui.canvas, "pointerup", 50, 50);
    view.run();
    const ids = new Uint8Array(80 * 60);
    ids.fill(1, 0, 800);
    const header = { dtype: "uint8", shape: [60, 80], encoding: "zlib" };
    model.receive({ type: "round_started", round: 1, frame: 0, start: 0, stop: 9 });
    model.set("status", "propagating");
    await nextFrame();
    expect(view.stats.interactiveDrawnAt).toBe(0); // drawn, but not yet with the round's mask
    model.receive({ type: "mask", index: 0, version: 0, pending: true, header }, [zlibSync(ids)]);
    await nextFrame();
    expect(view.stats.interactiveDrawnAt).toBeGreaterThan(0);
    expect(view.masks.get(0, false)).toEqual(ids);
    model.receive({ type: "mask", index: 1, version: 0, pending: true, header: { ...header, encoding: "empty" } });
    model.receive({ type: "round_finished", round: 1, version: 1 });
    model.set("round_index", 1);
    model.set("mask_version", 1);
    model.set("status", "idle");
    expect(view.prompts.get(0)).toHaveLength(0);
    expect(view.masks.get(1, true)).toBeNull();
    expect(view.masks.get(0, true)).toEqual(ids);
    expect(model.ofType("request_mask")).toHaveLength(0);
  });

  it("fetches committed masks lazily after an undo changes the version", async () => {
    const { model } = setup({ round_index: 1, mask_version: 1 });
    await nextFrame();
    expect(model.ofType("request_mask").map((m) => m.index)).toEqual([0]);
    model.set("mask_version", 2);
    await nextFrame();
    expect(model.ofType("request_mask").map((m) => m.index)).toEqual([0, 0]);
  });

  it("shows kernel errors in a banner that can be dismissed", () => {
    const { model, view } = setup();
    model.set("error", "ScribbleError: points outside the frame");
    expect(view.ui.errorBanner.hidden).toBe(false);
    expect(view.ui.errorText.textContent).toContain("outside the frame");
    view.ui.errorClose.click();
    expect(view.ui.errorBanner.hidden).toBe(true);
    expect(model.traits.error).toBe("");
  });

  it("requests the selected object's matching map when the overlay is on", async () => {
    const { model } = setup({ round_index: 1, mask_version: 1, active_object: 2 });
    model.set("map_overlay", "global");
    await nextFrame();
    expect(model.ofType("request_map")).toEqual([{ type: "request_map", index: 0, object_id: 2, kind: "global" }]);
  });
});

describe("playback and timeline", () => {
  it("plays through cached frames, waits for missing ones, and stops at the end", async () => {
    vi.useFakeTimers();
    try {
      const { model, view } = setup({ num_frames: 4, play_fps: 10 });
      for (let t = 0; t < 4; t++) {
        model.receive({ type: "frame", index: t, header: { dtype: "uint8", shape: [60, 80, 3], encoding: "jpeg" } },
          [new Uint8Array([255, 216, t])]);
      }
      await vi.advanceTimersByTimeAsync(10);
      expect(view.hasFrame(3)).toBe(true);
      key(view.ui.root, "p");
      expect(view.playing).toBe(true);
      await vi.advanceTimersByTimeAsync(450);
      expect(view.frame).toBe(3);
      expect(view.playing).toBe(false);
      await vi.advanceTimersByTimeAsync(300);
      expect(model.traits.frame_index).toBe(3);
    } finally {
      vi.useRealTimers();
    }
  });

  it("scrubs to the frame under the pointer", () => {
    const { view } = setup({ num_frames: 100 });
    vi.spyOn(view.ui.timeline, "getBoundingClientRect").mockReturnValue(
      { left: 0, top: 0, width: 416, height: 34, right: 416, bottom: 34, x: 0, y: 0, toJSON: () => ({}) });
    pointer(view.ui.timeline, "pointerdown", 8 + 200, 10);
    expect(view.frame).toBe(50);
    pointer(view.ui.timeline, "pointermove", 8 + 400, 10);
    expect(view.frame).toBe(100 - 1);
    pointer(view.ui.timeline, "pointerup", 8 + 400, 10);
  });
});

describe("propagation range and session steps", () => {
  const timelineRect = (view: ReturnType<typeof setup>["view"]): void => {
    vi.spyOn(view.ui.timeline, "getBoundingClientRect").mockReturnValue(
      { left: 0, top: 0, width: 416, height: 34, right: 416, bottom: 34, x: 0, y: 0, toJSON: () => ({}) });
  };
  const drawStroke = (view: ReturnType<typeof setup>["view"]): void => {
    pointer(view.ui.canvas, "pointerdown", 50, 50, { button: 0 });
    pointer(view.ui.canvas, "pointerup", 50, 50);
  };

  it("Shift+drag on the timeline sets the range that Run sends, without moving the frame", () => {
    const { model, view } = setup({ num_frames: 100 });
    timelineRect(view);
    pointer(view.ui.timeline, "pointerdown", 8 + 300, 10, { shiftKey: true });
    pointer(view.ui.timeline, "pointermove", 8 + 100, 10, { shiftKey: true });
    pointer(view.ui.timeline, "pointerup", 8 + 100, 10);
    expect([model.traits.range_start, model.traits.range_stop]).toEqual([25, 75]);
    expect(view.frame).toBe(0);
    expect(view.ui.rangeLabel.textContent).toBe("frames 26-76");
    view.setFrame(30);
    drawStroke(view);
    view.ui.direction.value = "forward";
    view.ui.direction.dispatchEvent(new Event("change"));
    view.ui.run.click();
    expect(model.ofType("run")[0]!.propagation).toEqual({ start: 25, stop: 75, direction: "forward" });
  });

  it("'from here' / 'to here' set the ends, a frame outside the range is not sent, 'all frames' clears", () => {
    const { model, view } = setup({ num_frames: 20 });
    view.setFrame(12);
    view.ui.rangeTo.click();
    view.setFrame(4);
    view.ui.rangeFrom.click();
    expect([model.traits.range_start, model.traits.range_stop]).toEqual([4, 12]);
    view.setFrame(15);
    drawStroke(view);
    view.ui.run.click();
    expect(model.ofType("run")).toEqual([]);
    expect(view.ui.hint.textContent).toContain("outside the propagation range 5-13");
    view.ui.rangeClear.click();
    expect([model.traits.range_start, model.traits.range_stop]).toEqual([-1, -1]);
    view.ui.run.click();
    const [run] = model.ofType("run");
    expect(run!.frame).toBe(15);
    expect("propagation" in run!).toBe(false); // the whole video, both ways: protocol default
  });

  it("undo sends the session's undo when it has a step, and deleting an object asks the kernel", () => {
    const { model, view } = setup({ round_index: 1, mask_version: 1 });
    expect(view.ui.undoRound.disabled).toBe(true);
    model.set("can_undo", true);
    expect(view.ui.undoRound.disabled).toBe(false);
    view.ui.undoRound.click();
    expect(model.ofType("undo")).toEqual([{ type: "undo" }]);
    const remove = view.ui.objectList.querySelector<HTMLButtonElement>('[data-object-id="2"] .manet-remove')!;
    remove.click();
    expect(model.ofType("delete_object")).toEqual([{ type: "delete_object", object_id: 2 }]);
    model.set("objects", [{ id: 1, name: "object 1", color: "#e6194b" }]);
    expect([...view.ui.objectList.querySelectorAll<HTMLElement>(".manet-object")].map((r) => r.dataset.objectId))
      .toEqual(["0", "1"]);
  });
});
