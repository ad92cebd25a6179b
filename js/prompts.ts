/**
 * Prompts drawn before a round is run, per frame, with undo/redo: strokes, clicks (strokes of
 * kind "click") and boxes, at most one box per object. A round annotates one frame: Run sends
 * every prompt of the frame on screen, all kinds in one message.
 */
import type { BoxPrompt, Stroke } from "./protocol";
import { UndoStack } from "./undo";

export interface FramePrompts {
  readonly strokes: readonly Stroke[];
  readonly boxes: readonly BoxPrompt[];
}

/** One undoable change of a frame's prompts: what they were before and after it. */
interface Change {
  before: FramePrompts;
  after: FramePrompts;
}

interface Entry {
  now: FramePrompts;
  history: UndoStack<Change>;
}

const EMPTY: FramePrompts = { strokes: [], boxes: [] };

export class PromptStore {
  private frames = new Map<number, Entry>();

  private entry(frame: number): Entry {
    let e = this.frames.get(frame);
    if (e === undefined) {
      e = { now: EMPTY, history: new UndoStack<Change>() };
      this.frames.set(frame, e);
    }
    return e;
  }

  /** Strokes and clicks of `frame`, in drawing order. */
  get(frame: number): readonly Stroke[] {
    return this.frames.get(frame)?.now.strokes ?? [];
  }

  boxes(frame: number): readonly BoxPrompt[] {
    return this.frames.get(frame)?.now.boxes ?? [];
  }

  /** Number of prompts (strokes, clicks, boxes) on `frame`. */
  count(frame: number): number {
    const now = this.frames.get(frame)?.now ?? EMPTY;
    return now.strokes.length + now.boxes.length;
  }

  /** Frames that hold prompts not yet run. */
  framesWithPrompts(): number[] {
    return [...this.frames.keys()].filter((f) => this.count(f) > 0);
  }

  private change(frame: number, next: FramePrompts): void {
    const e = this.entry(frame);
    e.history.push({ before: e.now, after: next });
    e.now = next;
  }

  add(frame: number, stroke: Stroke): void {
    const now = this.entry(frame).now;
    this.change(frame, { strokes: [...now.strokes, stroke], boxes: now.boxes });
  }

  /** Set the box of `box.objectId` on `frame`, replacing its earlier box (one per object and round). */
  setBox(frame: number, box: BoxPrompt): void {
    const now = this.entry(frame).now;
    this.change(frame, { strokes: now.strokes, boxes: [...now.boxes.filter((b) => b.objectId !== box.objectId), box] });
  }

  /** Remove every prompt of `frame` (undoable); false when there was nothing to clear. */
  clear(frame: number): boolean {
    if (this.count(frame) === 0) return false;
    this.change(frame, EMPTY);
    return true;
  }

  undo(frame: number): boolean {
    const e = this.frames.get(frame);
    const change = e?.history.undo();
    if (e === undefined || change === undefined) return false;
    e.now = change.before;
    return true;
  }

  redo(frame: number): boolean {
    const e = this.frames.get(frame);
    const change = e?.history.redo();
    if (e === undefined || change === undefined) return false;
    e.now = change.after;
    return true;
  }

  canUndo(frame: number): boolean {
    return this.frames.get(frame)?.history.canUndo ?? false;
  }

  canRedo(frame: number): boolean {
    return this.frames.get(frame)?.history.canRedo ?? false;
  }

  /** Forget a frame's prompts and history (after its round was committed). */
  forget(frame: number): void {
    this.frames.delete(frame);
  }

  /** Drop every prompt of an object that was deleted. */
  dropObject(objectId: number): void {
    const keep = (p: FramePrompts): FramePrompts => ({
      strokes: p.strokes.filter((s) => s.objectId !== objectId),
      boxes: p.boxes.filter((b) => b.objectId !== objectId),
    });
    for (const e of this.frames.values()) {
      e.now = keep(e.now);
      e.history.map((change) => ({ before: keep(change.before), after: keep(change.after) }));
    }
  }

  /** Object ids with prompts on any frame. */
  objectIds(): Set<number> {
    const ids = new Set<number>();
    for (const e of this.frames.values()) {
      for (const s of e.now.strokes) ids.add(s.objectId);
      for (const b of e.now.boxes) ids.add(b.objectId);
    }
    return ids;
  }
}
