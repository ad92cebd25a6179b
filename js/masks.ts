/**
 * Masks held by the browser: the committed masks of one `mask_version`, fetched lazily, and the
 * masks a running round streams in ("pending"). A cancelled round's pending masks are dropped, so
 * the previous round's result shows again; a finished round's become the committed ones.
 */

export type Ids = Uint8Array | null; // null: all background

export class MaskStore {
  version = -1;
  private committed = new Map<number, Ids>();
  private pending = new Map<number, Ids>();
  private requested = new Set<number>();
  running = false;
  runningFrame = -1;

  /** Adopt committed-state `version`; a new one drops every cached committed mask. */
  setVersion(version: number): boolean {
    if (version === this.version) return false;
    this.version = version;
    this.committed.clear();
    this.requested.clear();
    return true;
  }

  /** The mask to show on `frame`: pending first, then committed; undefined when unknown. */
  get(frame: number, haveRounds: boolean): Ids | undefined {
    if (this.running && this.pending.has(frame)) return this.pending.get(frame);
    if (!haveRounds) return null;
    return this.committed.get(frame);
  }

  /** True (once) when the committed mask of `frame` must be asked for. */
  shouldRequest(frame: number, haveRounds: boolean): boolean {
    if (!haveRounds || this.committed.has(frame) || this.requested.has(frame)) return false;
    this.requested.add(frame);
    return true;
  }

  /** Store a received mask; false when it belongs to an outdated version or no running round. */
  accept(index: number, version: number, pending: boolean, ids: Ids): boolean {
    if (pending) {
      if (!this.running) return false;
      this.pending.set(index, ids);
      return true;
    }
    this.requested.delete(index);
    if (version !== this.version) return false;
    this.committed.set(index, ids);
    return true;
  }

  startRound(frame: number): void {
    this.running = true;
    this.runningFrame = frame;
    this.pending.clear();
  }

  /** The round committed as `version`: its streamed masks become the committed ones. */
  finishRound(version: number): void {
    this.setVersion(version);
    for (const [frame, ids] of this.pending) this.committed.set(frame, ids);
    this.endRound();
  }

  cancelRound(): void {
    this.endRound();
  }

  private endRound(): void {
    this.running = false;
    this.runningFrame = -1;
    this.pending.clear();
  }

  /** True once the running round has streamed the mask of `frame`. */
  hasPending(frame: number): boolean {
    return this.running && this.pending.has(frame);
  }

  pendingFrames(): Set<number> {
    return new Set(this.running ? this.pending.keys() : []);
  }
}
