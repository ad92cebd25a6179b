/**
 * Playback and the `frame_index` write-back of a view: a play timer that steps through cached
 * frames (waiting for missing ones) and a debounced sync of the shown frame to the trait, so
 * playing does not flood the kernel with trait updates.
 */

export interface PlayerHost {
  frame(): number;
  numFrames(): number;
  fps(): number;
  hasFrame(t: number): boolean;
  requestFrame(t: number): void;
  show(t: number): void;
  /** The trait's value and a write of it. */
  frameIndex(): number;
  writeFrameIndex(t: number): void;
  /** Playing started or stopped. */
  changed(): void;
}

const SYNC_WHILE_PLAYING_MS = 250;

export class Player {
  private playTimer: ReturnType<typeof setInterval> | null = null;
  private syncTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly host: PlayerHost) {}

  get playing(): boolean {
    return this.playTimer !== null;
  }

  /** True while a write-back is scheduled (a trait change then is the view's own echo). */
  get syncing(): boolean {
    return this.syncTimer !== null;
  }

  toggle(): void {
    if (this.playing) {
      this.stop();
      return;
    }
    const h = this.host;
    if (h.frame() >= h.numFrames() - 1) h.show(0);
    this.playTimer = setInterval(() => {
      const next = h.frame() + 1;
      if (next >= h.numFrames()) {
        this.stop();
        return;
      }
      if (h.hasFrame(next)) h.show(next);
      else h.requestFrame(next);
    }, 1000 / Math.max(1, h.fps()));
    h.changed();
  }

  stop(): void {
    if (this.playTimer !== null) clearInterval(this.playTimer);
    this.playTimer = null;
    this.host.changed();
  }

  /** Write the shown frame back to the trait: at once when paused, debounced while playing. */
  syncFrameIndex(): void {
    if (this.syncTimer !== null) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = null;
      const frame = this.host.frame();
      if (this.host.frameIndex() !== frame) this.host.writeFrameIndex(frame);
    }, this.playing ? SYNC_WHILE_PLAYING_MS : 0);
  }

  dispose(): void {
    if (this.playTimer !== null) clearInterval(this.playTimer);
    if (this.syncTimer !== null) clearTimeout(this.syncTimer);
    this.playTimer = null;
    this.syncTimer = null;
  }
}
