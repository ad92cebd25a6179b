import { describe, expect, it } from "vitest";
import { UndoStack } from "../undo";

describe("UndoStack", () => {
  it("undoes and redoes in order, and a new step clears the redo side", () => {
    const stack = new UndoStack<number>();
    stack.push(1);
    stack.push(2);
    expect(stack.undo()).toBe(2);
    expect(stack.canRedo).toBe(true);
    expect(stack.redo()).toBe(2);
    expect(stack.undo()).toBe(2);
    stack.push(3);
    expect(stack.canRedo).toBe(false);
    expect(stack.undo()).toBe(3);
    expect(stack.undo()).toBe(1);
    expect(stack.undo()).toBeUndefined();
    expect(stack.canUndo).toBe(false);
  });

  it("forgets the oldest step past its limit and rewrites steps with map", () => {
    const stack = new UndoStack<number>(2);
    for (const step of [1, 2, 3]) stack.push(step);
    stack.map((step) => step * 10);
    expect([stack.undo(), stack.undo(), stack.undo()]).toEqual([30, 20, undefined]);
    expect(stack.redo()).toBe(20);
  });
});
