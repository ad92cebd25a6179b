/** Keyboard shortcuts of the annotator, as a pure mapping from key events to actions. */
import type { Tool } from "./traits";

export type KeyAction =
  | { kind: "step"; delta: number }
  | { kind: "first" } | { kind: "last" }
  | { kind: "play" }
  | { kind: "select"; objectId: number }
  | { kind: "run" } | { kind: "cancel" }
  | { kind: "undo" } | { kind: "redo" }
  | { kind: "clear" }
  | { kind: "brush"; factor: number }
  | { kind: "fit" }
  | { kind: "cycleMap" }
  | { kind: "toggleMode" }
  | { kind: "suggested" }
  | { kind: "tool"; tool: Tool }
  | { kind: "help" };

export interface KeyLike {
  key: string;
  ctrlKey: boolean;
  metaKey: boolean;
  shiftKey: boolean;
  altKey: boolean;
}

/** Tool keys: d(raw), k (clic-k), r(ectangle), n (pai-n-t), e(rase). */
export const TOOL_KEYS: Readonly<Record<string, Tool>> = { d: "scribble", k: "click", r: "box", n: "paint", e: "erase" };

export const SHORTCUTS: readonly [string, string][] = [
  ["d", "scribble tool: drag to draw strokes"],
  ["k", "click tool: click = positive point, right click = background point"],
  ["r / Shift+drag", "box tool: drag a box around the selected object (one per object)"],
  ["n / e", "paint / erase the frame's mask for the selected object"],
  ["← / →", "previous / next frame (Shift: 10)"],
  ["Home / End", "first / last frame"],
  ["p", "play / pause"],
  ["1-9", "select object"],
  ["0 / b / right button", "background (negative) prompts"],
  ["[ / ]", "brush size"],
  ["Enter", "run round (paint tools: apply the painted mask)"],
  ["Esc", "cancel propagation"],
  ["Ctrl+Z / Ctrl+Shift+Z", "undo / redo prompt or paint stroke"],
  ["c", "clear prompts on frame (paint tools: drop the painting)"],
  ["wheel / Space+drag / middle drag", "zoom / pan"],
  ["f", "fit view"],
  ["m", "cycle matching-map overlay"],
  ["o", "fill / outline"],
  ["s", "go to suggested frame"],
  ["Shift+drag on the timeline", "propagation range of the next round"],
  ["?", "show shortcuts"],
];

export function actionForKey(e: KeyLike): KeyAction | null {
  const mod = e.ctrlKey || e.metaKey;
  const key = e.key;
  if (mod) {
    const lower = key.toLowerCase();
    if (lower === "z") return e.shiftKey ? { kind: "redo" } : { kind: "undo" };
    if (lower === "y") return { kind: "redo" };
    return null;
  }
  if (e.altKey) return null;
  switch (key) {
    case "ArrowLeft": return { kind: "step", delta: e.shiftKey ? -10 : -1 };
    case "ArrowRight": return { kind: "step", delta: e.shiftKey ? 10 : 1 };
    case "Home": return { kind: "first" };
    case "End": return { kind: "last" };
    case "Enter": return { kind: "run" };
    case "Escape": return { kind: "cancel" };
    case "[": return { kind: "brush", factor: 1 / 1.25 };
    case "]": return { kind: "brush", factor: 1.25 };
    case "?": return { kind: "help" };
    default: break;
  }
  const lower = key.toLowerCase();
  if (/^[0-9]$/.test(key)) return { kind: "select", objectId: Number(key) };
  if (lower === "b") return { kind: "select", objectId: 0 };
  if (lower === "p") return { kind: "play" };
  if (lower === "c") return { kind: "clear" };
  if (lower === "f") return { kind: "fit" };
  if (lower === "m") return { kind: "cycleMap" };
  if (lower === "o") return { kind: "toggleMode" };
  if (lower === "s") return { kind: "suggested" };
  const tool = lower.length === 1 ? TOOL_KEYS[lower] : undefined;
  if (tool !== undefined) return { kind: "tool", tool };
  return null;
}
