/**
 * The timeline under the canvas: a track with one cell per frame, the current frame, markers for
 * the frame annotated in each round, the suggested next frame, frames with strokes not yet run,
 * and the frames the running propagation has reached.
 */

export interface TimelineState {
  numFrames: number;
  current: number;
  annotated: readonly number[]; // annotated[r] = frame of round r + 1
  suggested: number; // -1: none
  withStrokes: readonly number[];
  pending: ReadonlySet<number>;
  /** The propagation range (null: every frame). */
  range: { start: number; stop: number } | null;
  colors: { track: string; fill: string; accent: string; text: string; marker: string; pending: string };
}

export const PADDING = 8;

/** x (CSS px) of the centre of frame `t` on a timeline `width` px wide. */
export function xOfFrame(t: number, numFrames: number, width: number): number {
  const usable = Math.max(1, width - 2 * PADDING);
  return PADDING + ((t + 0.5) / Math.max(1, numFrames)) * usable;
}

/** The frame under x (CSS px), clamped to the video. */
export function frameAtX(x: number, numFrames: number, width: number): number {
  const usable = Math.max(1, width - 2 * PADDING);
  const t = Math.floor(((x - PADDING) / usable) * numFrames);
  return Math.min(numFrames - 1, Math.max(0, t));
}

export function drawTimeline(ctx: CanvasRenderingContext2D, width: number, height: number, s: TimelineState): void {
  ctx.clearRect(0, 0, width, height);
  if (s.numFrames <= 0) return;
  const trackTop = 16;
  const trackHeight = height - trackTop - 6;
  const usable = width - 2 * PADDING;
  const cell = usable / s.numFrames;
  ctx.fillStyle = s.colors.track;
  ctx.fillRect(PADDING, trackTop, usable, trackHeight);
  if (s.range !== null) {
    ctx.strokeStyle = s.colors.fill;
    ctx.lineWidth = 2;
    ctx.strokeRect(PADDING + s.range.start * cell, trackTop - 1, (s.range.stop - s.range.start + 1) * cell, trackHeight + 2);
  }
  if (s.pending.size > 0) {
    ctx.fillStyle = s.colors.pending;
    for (const t of s.pending) ctx.fillRect(PADDING + t * cell, trackTop, Math.max(1, cell), trackHeight);
  }
  ctx.fillStyle = s.colors.fill;
  ctx.fillRect(PADDING, trackTop, (s.current + 1) * cell, 3);
  ctx.fillStyle = s.colors.marker;
  for (const t of s.withStrokes) {
    ctx.beginPath();
    ctx.arc(xOfFrame(t, s.numFrames, width), trackTop + trackHeight / 2, 3, 0, 2 * Math.PI);
    ctx.fill();
  }
  ctx.font = "9px sans-serif";
  ctx.textAlign = "center";
  s.annotated.forEach((t, r) => {
    const x = xOfFrame(t, s.numFrames, width);
    ctx.fillStyle = s.colors.text;
    ctx.beginPath();
    ctx.moveTo(x - 5, 2);
    ctx.lineTo(x + 5, 2);
    ctx.lineTo(x, 10);
    ctx.closePath();
    ctx.fill();
    ctx.fillText(String(r + 1), x, 21 + trackHeight / 2);
  });
  if (s.suggested >= 0) {
    const x = xOfFrame(s.suggested, s.numFrames, width);
    ctx.strokeStyle = s.colors.accent;
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(x, 1);
    ctx.lineTo(x + 5, 7);
    ctx.lineTo(x, 13);
    ctx.lineTo(x - 5, 7);
    ctx.closePath();
    ctx.stroke();
  }
  const cx = xOfFrame(s.current, s.numFrames, width);
  ctx.fillStyle = s.colors.accent;
  ctx.fillRect(cx - 1, trackTop - 3, 2, trackHeight + 6);
}
