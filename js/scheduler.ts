/**
 * Draw scheduling of a view: many state changes in one task cost one canvas draw on the next
 * animation frame, and the timeline (cheaper to skip than to draw per mask) at most every 30 ms.
 */

const TIMELINE_DELAY_MS = 30;

export class DrawScheduler {
  private drawPending = false;
  private timelinePending = false;
  private disposed = false;

  constructor(private readonly draw: () => void, private readonly drawTimeline: () => void) {}

  /** Draw the canvas on the next animation frame (once, however often this is called). */
  invalidate(): void {
    if (this.drawPending || this.disposed) return;
    this.drawPending = true;
    const raf = globalThis.requestAnimationFrame ??
      ((f: FrameRequestCallback) => setTimeout(() => f(performance.now()), 16));
    raf(() => {
      this.drawPending = false;
      if (!this.disposed) this.draw();
    });
  }

  /** Draw the timeline soon (once per 30 ms burst). */
  timelineSoon(): void {
    if (this.timelinePending || this.disposed) return;
    this.timelinePending = true;
    setTimeout(() => {
      this.timelinePending = false;
      if (!this.disposed) this.drawTimeline();
    }, TIMELINE_DELAY_MS);
  }

  dispose(): void {
    this.disposed = true;
  }
}
