/** Building one stroke from pointer samples (see `prompts.ts` for the strokes of a frame). */
import type { Stroke } from "./protocol";

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
