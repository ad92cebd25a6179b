import { describe, expect, it } from "vitest";
import { actionForKey, SHORTCUTS, type KeyLike } from "../keyboard";

const key = (k: string, mods: Partial<KeyLike> = {}): KeyLike => ({
  key: k, ctrlKey: false, metaKey: false, shiftKey: false, altKey: false, ...mods,
});

describe("shortcuts", () => {
  it("maps navigation, objects and rounds", () => {
    expect(actionForKey(key("ArrowRight"))).toEqual({ kind: "step", delta: 1 });
    expect(actionForKey(key("ArrowLeft", { shiftKey: true }))).toEqual({ kind: "step", delta: -10 });
    expect(actionForKey(key("3"))).toEqual({ kind: "select", objectId: 3 });
    expect(actionForKey(key("0"))).toEqual({ kind: "select", objectId: 0 });
    expect(actionForKey(key("b"))).toEqual({ kind: "select", objectId: 0 });
    expect(actionForKey(key("Enter"))).toEqual({ kind: "run" });
    expect(actionForKey(key("Escape"))).toEqual({ kind: "cancel" });
    expect(actionForKey(key("]"))).toEqual({ kind: "brush", factor: 1.25 });
  });

  it("maps undo and redo with Ctrl or Cmd, and ignores other chords", () => {
    expect(actionForKey(key("z", { ctrlKey: true }))).toEqual({ kind: "undo" });
    expect(actionForKey(key("Z", { metaKey: true, shiftKey: true }))).toEqual({ kind: "redo" });
    expect(actionForKey(key("y", { ctrlKey: true }))).toEqual({ kind: "redo" });
    expect(actionForKey(key("s", { ctrlKey: true }))).toBeNull();
    expect(actionForKey(key("c", { altKey: true }))).toBeNull();
    expect(actionForKey(key("x"))).toBeNull();
  });

  it("picks tools with d, k, r, n, e and lists them in the help", () => {
    expect(["d", "k", "r", "n", "E"].map((k) => actionForKey(key(k)))).toEqual([
      { kind: "tool", tool: "scribble" }, { kind: "tool", tool: "click" }, { kind: "tool", tool: "box" },
      { kind: "tool", tool: "paint" }, { kind: "tool", tool: "erase" }]);
    expect(actionForKey(key("d", { ctrlKey: true }))).toBeNull();
    expect(actionForKey(key("Delete"))).toBeNull();
    const help = SHORTCUTS.map(([keys, what]) => `${keys} ${what}`).join("\n");
    for (const word of ["scribble", "click", "box", "paint", "erase", "Shift+drag"]) expect(help).toContain(word);
  });
});
