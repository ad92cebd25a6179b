/**
 * Mask painting in the browser: a brush that paints the selected object's id into a frame's mask
 * and an eraser that turns the selected object's pixels back to background (with background
 * selected, both clear every object). Edits are per frame with undo/redo; "Apply" sends the
 * edited mask (see `encodeApplyMask`) and the kernel makes it that frame's result.
 *
 * Coordinates are original-frame pixels; pixel (x, y) covers [x, x+1) x [y, y+1) and is painted
 * when its centre lies within the brush radius, and the pixel under the pointer always is.
 */

import { UndoStack } from "./undo";

export type PaintMode = "paint" | "erase";

/** The pixels one brush stroke changed: their indices and previous values; `value` was written. */
export interface PaintEdit {
  indices: Int32Array;
  before: Uint8Array;
  value: number;
}

export type Recorder = (index: number, before: number) => void;

/** What a brush in `mode` writes, and whether it changes a pixel holding `id`. */
export function brushRule(mode: PaintMode, objectId: number): { value: number; applies: (id: number) => boolean } {
  if (mode === "paint") return { value: objectId, applies: (id) => id !== objectId };
  return { value: 0, applies: objectId === 0 ? (id) => id !== 0 : (id) => id === objectId };
}

/** Paint one disc; returns how many pixels changed (each reported to `record` first). */
export function paintDisc(
  ids: Uint8Array, width: number, height: number, cx: number, cy: number, radius: number,
  mode: PaintMode, objectId: number, record?: Recorder,
): number {
  const { value, applies } = brushRule(mode, objectId);
  const r = Math.max(0.5, radius);
  const y0 = Math.max(0, Math.floor(cy - r));
  const y1 = Math.min(height - 1, Math.ceil(cy + r));
  const x0 = Math.max(0, Math.floor(cx - r));
  const x1 = Math.min(width - 1, Math.ceil(cx + r));
  const [px, py] = [Math.floor(cx), Math.floor(cy)]; // the pixel under the pointer always counts
  let changed = 0;
  for (let y = y0; y <= y1; y++) {
    const dy = y + 0.5 - cy;
    for (let x = x0; x <= x1; x++) {
      const dx = x + 0.5 - cx;
      if (dx * dx + dy * dy > r * r && (x !== px || y !== py)) continue;
      const p = y * width + x;
      const id = ids[p]!;
      if (!applies(id)) continue;
      record?.(p, id);
      ids[p] = value;
      changed += 1;
    }
  }
  return changed;
}

/** Paint discs along the segment (x0, y0) -> (x1, y1), close enough to leave no gaps. */
export function paintSegment(
  ids: Uint8Array, width: number, height: number, x0: number, y0: number, x1: number, y1: number,
  radius: number, mode: PaintMode, objectId: number, record?: Recorder,
): number {
  const length = Math.hypot(x1 - x0, y1 - y0);
  const steps = Math.max(1, Math.ceil(length / Math.max(0.5, radius / 2)));
  let changed = 0;
  for (let i = 1; i <= steps; i++) {
    const t = i / steps;
    changed += paintDisc(ids, width, height, x0 + t * (x1 - x0), y0 + t * (y1 - y0), radius, mode, objectId, record);
  }
  return changed;
}

interface FramePaint {
  ids: Uint8Array;
  width: number;
  height: number;
  history: UndoStack<PaintEdit>;
  revision: number;
}

/** One brush stroke in progress on a frame's edit buffer. */
export class PaintStroke {
  private indices: number[] = [];
  private before: number[] = [];
  private last: [number, number] | null = null;

  constructor(private readonly target: FramePaint, private readonly radius: number,
    private readonly mode: PaintMode, private readonly objectId: number, private readonly done: (edit: PaintEdit) => void) {}

  /** Continue the stroke to (x, y) (the first call paints a single dab). */
  to(x: number, y: number): void {
    const t = this.target;
    const record: Recorder = (p, id) => {
      this.indices.push(p);
      this.before.push(id);
    };
    const changed = this.last === null
      ? paintDisc(t.ids, t.width, t.height, x, y, this.radius, this.mode, this.objectId, record)
      : paintSegment(t.ids, t.width, t.height, this.last[0], this.last[1], x, y, this.radius, this.mode, this.objectId, record);
    this.last = [x, y];
    if (changed > 0) t.revision += 1;
  }

  /** End the stroke: it becomes one undo step (none when it changed nothing). */
  finish(): void {
    if (this.indices.length === 0) return;
    this.done({
      indices: Int32Array.from(this.indices), before: Uint8Array.from(this.before),
      value: brushRule(this.mode, this.objectId).value,
    });
    this.indices = [];
    this.before = [];
  }
}

/** Edited masks per frame, each with its own undo/redo history. */
export class PaintStore {
  private frames = new Map<number, FramePaint>();

  /** True when `frame` has an edit buffer (it may hold no change yet). */
  has(frame: number): boolean {
    return this.frames.has(frame);
  }

  /** The edited mask of `frame`, or undefined when it was never painted. */
  ids(frame: number): Uint8Array | undefined {
    return this.frames.get(frame)?.ids;
  }

  /** Bumped on every change of `frame`'s mask (for caches of its overlay). */
  revision(frame: number): number {
    return this.frames.get(frame)?.revision ?? 0;
  }

  /** True when `frame` holds painted changes that Apply would send. */
  edited(frame: number): boolean {
    return this.frames.get(frame)?.history.canUndo ?? false;
  }

  /** Frames with painted changes not yet applied. */
  editedFrames(): number[] {
    return [...this.frames.keys()].filter((f) => this.edited(f));
  }

  /**
   * Start a brush stroke on `frame`. The frame's edit buffer starts as a copy of `base` (the
   * mask shown; null = all background) the first time, and keeps its edits afterwards.
   */
  startStroke(frame: number, base: Uint8Array | null, width: number, height: number, radius: number,
    mode: PaintMode, objectId: number): PaintStroke {
    let target = this.frames.get(frame);
    if (target === undefined || target.ids.length !== width * height) {
      const ids = base !== null && base.length === width * height ? base.slice() : new Uint8Array(width * height);
      target = { ids, width, height, history: new UndoStack<PaintEdit>(), revision: 0 };
      this.frames.set(frame, target);
    }
    const owner = target;
    return new PaintStroke(owner, radius, mode, objectId, (edit) => owner.history.push(edit));
  }

  undo(frame: number): boolean {
    const f = this.frames.get(frame);
    const edit = f?.history.undo();
    if (f === undefined || edit === undefined) return false;
    for (let i = 0; i < edit.indices.length; i++) f.ids[edit.indices[i]!] = edit.before[i]!;
    f.revision += 1;
    return true;
  }

  redo(frame: number): boolean {
    const f = this.frames.get(frame);
    const edit = f?.history.redo();
    if (f === undefined || edit === undefined) return false;
    for (let i = 0; i < edit.indices.length; i++) f.ids[edit.indices[i]!] = edit.value;
    f.revision += 1;
    return true;
  }

  canUndo(frame: number): boolean {
    return this.frames.get(frame)?.history.canUndo ?? false;
  }

  canRedo(frame: number): boolean {
    return this.frames.get(frame)?.history.canRedo ?? false;
  }

  /** Drop `frame`'s edits (after they were applied, or to start over from the shown mask). */
  forget(frame: number): boolean {
    return this.frames.delete(frame);
  }
}
