import { describe, expect, it } from "vitest";
import { PromptStore } from "../prompts";
import type { BoxPrompt, Stroke } from "../protocol";

const stroke = (objectId: number): Stroke => ({ objectId, radius: 2, points: [1, 1, 4, 4] });
const click = (objectId: number): Stroke => ({ objectId, radius: 3, points: [5, 6], kind: "click" });
const box = (objectId: number, x0 = 1): BoxPrompt => ({ objectId, x0, y0: 2, x1: 30, y1: 40 });

describe("PromptStore", () => {
  it("undoes and redoes adds and clears per frame", () => {
    const s = new PromptStore();
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
    expect(s.framesWithPrompts().sort()).toEqual([3, 5]);
  });

  it("reports nothing to undo, clear or redo on a fresh frame", () => {
    const s = new PromptStore();
    expect(s.undo(0)).toBe(false);
    expect(s.redo(0)).toBe(false);
    expect(s.clear(0)).toBe(false);
    expect(s.count(0)).toBe(0);
  });

  it("keeps one box per object: a new box replaces the object's old one, undoably", () => {
    const s = new PromptStore();
    s.setBox(0, box(1));
    s.add(0, click(1));
    s.setBox(0, box(2));
    s.setBox(0, box(1, 9));
    expect(s.boxes(0)).toEqual([box(2), box(1, 9)]);
    expect(s.count(0)).toBe(3);
    expect(s.framesWithPrompts()).toEqual([0]);
    s.undo(0);
    expect(s.boxes(0)).toEqual([box(1), box(2)]);
    s.undo(0);
    s.undo(0);
    expect(s.boxes(0)).toEqual([box(1)]);
    expect(s.get(0)).toEqual([]);
    s.redo(0);
    expect(s.get(0)).toEqual([click(1)]);
  });

  it("forgets a committed frame and drops a deleted object's strokes, clicks and boxes", () => {
    const s = new PromptStore();
    s.add(1, stroke(1));
    s.add(1, click(2));
    s.setBox(1, box(2));
    s.setBox(1, box(1));
    expect([...s.objectIds()].sort()).toEqual([1, 2]);
    s.dropObject(2);
    expect(s.get(1).map((x) => x.objectId)).toEqual([1]);
    expect(s.boxes(1).map((b) => b.objectId)).toEqual([1]);
    s.undo(1);
    expect(s.boxes(1)).toEqual([]);
    s.forget(1);
    expect(s.get(1)).toEqual([]);
    expect(s.canUndo(1)).toBe(false);
  });
});
