/**
 * The propagation range of the next round, as the view's traits hold it: frames
 * `range_start`..`range_stop` (-1: the video's first / last frame), going `propagation_direction`
 * from the annotated frame. Pure functions of those values.
 */
import type { Direction, PropagationRange } from "./protocol";

export interface RangeTraits {
  start: number;
  stop: number;
  direction: Direction;
  numFrames: number;
}

/** The frames the range spans (null: every frame). */
export function rangeSpan(r: RangeTraits): { start: number; stop: number } | null {
  if (r.start < 0 && r.stop < 0) return null;
  return { start: Math.max(0, r.start), stop: r.stop < 0 ? r.numFrames - 1 : r.stop };
}

/**
 * What a round on `frame` sends as `propagation`: null for every frame both ways (the protocol's
 * default), or an error saying why `frame` cannot be annotated with this range.
 */
export function propagationFor(r: RangeTraits, frame: number): { propagation: PropagationRange | null } | { error: string } {
  const span = rangeSpan(r);
  if (span === null && r.direction === "both") return { propagation: null };
  const { start, stop } = span ?? { start: 0, stop: r.numFrames - 1 };
  if (frame < start || frame > stop) {
    return { error: `frame ${frame + 1} is outside the propagation range ${start + 1}-${stop + 1}: ` +
      "move the range (Shift+drag on the timeline) or clear it" };
  }
  return { propagation: { start, stop, direction: r.direction } };
}

/** The range after setting one end to `frame` ("from here" / "to here"); ends swap when crossed. */
export function withEnd(r: Pick<RangeTraits, "start" | "stop">, end: "start" | "stop", frame: number): [number, number] {
  let [start, stop] = end === "start" ? [frame, r.stop] : [r.start, frame];
  if (start >= 0 && stop >= 0 && start > stop) [start, stop] = [stop, start];
  return [start, stop];
}

/** "all frames", or "frames 5-13" (1-based, as the frame counter shows them). */
export function describeRange(r: RangeTraits): string {
  const span = rangeSpan(r);
  return span === null ? "all frames" : `frames ${span.start + 1}-${span.stop + 1}`;
}
