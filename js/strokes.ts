/**
 * Strokes drawn before a round is run, per frame, with undo/redo. A round annotates one frame:
 * Run sends the strokes of the frame on screen.
 */
import type { Stroke } from "./protocol";

interface FrameStrokes {
  strokes: Stroke[];
  undo: Stroke[][];
  redo: Stroke[][];
}

export class StrokeStore {
  private frames = new Map<number, FrameStrokes>();

  private entry(frame: number): FrameStrokes {
    let e = this.frames.get(frame);
    if (e === undefined) {
      e = { strokes: [], undo: [], redo: [] };
      this.frames.set(frame, e);
    }
    return e;
  }

  get(frame: number): readonly Stroke[] {
    return this.frames.get(frame)?.strokes ?? [];
  }

  /** Frames that hold strokes not yet run. */
  framesWithStrokes(): number[] {
    return [...this.frames.entries()].filter(([, e]) => e.strokes.length > 0).map(([f]) => f);
  }

  private change(frame: number, next: Stroke[]): void {
    const e = this.entry(frame);
    e.undo.push(e.strokes);
    e.redo = [];
    e.strokes = next;
  }

  add(frame: number, stroke: Stroke): void {
    this.change(frame, [...this.get(frame), stroke]);
  }

  /** Remove every stroke of `frame` (undoable); false when there was nothing to clear. */
  clear(frame: number): boolean {
    if (this.get(frame).length === 0) return false;
    this.change(frame, []);
    return true;
  }

  undo(frame: number): boolean {
    const e = this.frames.get(frame);
    const previous = e?.undo.pop();
    if (e === undefined || previous === undefined) return false;
    e.redo.push(e.strokes);
    e.strokes = previous;
    return true;
  }

  redo(frame: number): boolean {
    const e = this.frames.get(frame);
    const next = e?.redo.pop();
    if (e === undefined || next === undefined) return false;
    e.undo.push(e.strokes);
    e.strokes = next;
    return true;
  }

  canUndo(frame: number): boolean {
    return (this.frames.get(frame)?.undo.length ?? 0) > 0;
  }

  canRedo(frame: number): boolean {
    return (this.frames.get(frame)?.redo.length ?? 0) > 0;
  }

  /** Forget a frame's strokes and history (after its round was committed). */
  forget(frame: number): void {
    this.frames.delete(frame);
  }

  /** Drop strokes of an object that was deleted. */
  dropObject(objectId: number): void {
    for (const e of this.frames.values()) {
      e.strokes = e.strokes.filter((s) => s.objectId !== objectId);
      e.undo = e.undo.map((list) => list.filter((s) => s.objectId !== objectId));
      e.redo = e.redo.map((list) => list.filter((s) => s.objectId !== objectId));
    }
  }
}

/** Pen pressure scales the radius around its nominal value; mouse and touch report 0.5. */
export function pressureScale(pressure: number, pointerType: string): number {
  if (pointerType !== "pen" || !(pressure > 0)) return 1;
  return Math.min(2, Math.max(0.25, pressure * 2));
}

/**
 * Collects one stroke's points in image pixels, clamped to the frame and thinned so that
 * consecutive points are at least `minSpacing` image pixels apart.
 */
export class StrokeBuilder {
  private points: number[] = [];
  private pressureSum = 0;
  private samples = 0;

  constructor(
    readonly objectId: number, readonly radius: number,
    private readonly width: number, private readonly height: number,
    private readonly minSpacing: number,
  ) {}

  add(x: number, y: number, pressureFactor = 1): boolean {
    const cx = Math.min(this.width, Math.max(0, x));
    const cy = Math.min(this.height, Math.max(0, y));
    this.pressureSum += pressureFactor;
    this.samples += 1;
    const n = this.points.length;
    if (n >= 2) {
      const dx = cx - this.points[n - 2]!;
      const dy = cy - this.points[n - 1]!;
      if (dx * dx + dy * dy < this.minSpacing * this.minSpacing) return false;
    }
    this.points.push(cx, cy);
    return true;
  }

  get pointCount(): number {
    return this.points.length / 2;
  }

  /** The stroke so far (its radius follows the mean pen pressure). */
  stroke(): Stroke {
    const mean = this.samples > 0 ? this.pressureSum / this.samples : 1;
    return { objectId: this.objectId, radius: this.radius * mean, points: [...this.points] };
  }
}
