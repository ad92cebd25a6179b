import { describe, expect, it } from "vitest";
import { pressureScale, StrokeBuilder, StrokeStore } from "../strokes";
import type { Stroke } from "../protocol";

const stroke = (objectId: number): Stroke => ({ objectId, radius: 2, points: [1, 1] });

describe("StrokeStore", () => {
  it("undoes and redoes adds and clears per frame", () => {
    const s = new StrokeStore();
    s.add(3, stroke(1));
    s.add(3, stroke(2));
    s.add(5, stroke(1));
    expect(s.get(3).map((x) => x.objectId)).toEqual([1, 2]);
    expect(s.clear(3)).toBe(true);
    expect(s.get(3)).toEqual([]);
    expect(s.undo(3)).toBe(true);
    expect(s.get(3)).toHaveLength(2);
    expect(s.undo(3)).toBe(true);
    expect(s.get(3)).toHaveLength(1);
    expect(s.redo(3)).toBe(true);
    expect(s.get(3)).toHaveLength(2);
    s.add(3, stroke(0));
    expect(s.canRedo(3)).toBe(false);
    expect(s.get(5)).toHaveLength(1);
    expect(s.framesWithStrokes().sort()).toEqual([3, 5]);
  });

  it("reports nothing to undo, clear or redo on a fresh frame", () => {
    const s = new StrokeStore();
    expect(s.undo(0)).toBe(false);
    expect(s.redo(0)).toBe(false);
    expect(s.clear(0)).toBe(false);
  });

  it("forgets a committed frame and drops a deleted object's strokes", () => {
    const s = new StrokeStore();
    s.add(1, stroke(1));
    s.add(1, stroke(2));
    s.dropObject(2);
    expect(s.get(1).map((x) => x.objectId)).toEqual([1]);
    s.forget(1);
    expect(s.get(1)).toEqual([]);
    expect(s.canUndo(1)).toBe(false);
  });
});

describe("StrokeBuilder", () => {
  it("thins points closer than the spacing and clamps to the frame", () => {
    const b = new StrokeBuilder(1, 4, 100, 50, 2);
    expect(b.add(10, 10)).toBe(true);
    expect(b.add(10.5, 10.5)).toBe(false);
    expect(b.add(13, 10)).toBe(true);
    expect(b.add(120, -5)).toBe(true);
    expect(b.stroke().points).toEqual([10, 10, 13, 10, 100, 0]);
  });

  it("scales the radius by the mean pen pressure only for pens", () => {
    expect(pressureScale(0.5, "mouse")).toBe(1);
    expect(pressureScale(0.25, "pen")).toBe(0.5);
    expect(pressureScale(1, "pen")).toBe(2);
    expect(pressureScale(0, "pen")).toBe(1);
    const b = new StrokeBuilder(2, 4, 100, 100, 1);
    b.add(1, 1, 0.5);
    b.add(5, 5, 1.5);
    expect(b.stroke().radius).toBe(4);
  });
});
