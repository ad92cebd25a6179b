/**
 * The round client of a view: sends Run / Apply (never twice before the kernel answers), follows
 * the round the kernel runs (started, streamed masks, finished, cancelled, failed), owns the masks
 * the browser holds and the timings the latency benchmark reads. `messages.ts` drives it; the
 * view only learns what it must redraw or forget through {@link RoundHost}.
 */
import { MaskStore, type Ids } from "./masks";
import type { ApplyMaskMessage, RoundStarted, RunMessage } from "./protocol";
import type { Status } from "./traits";

/** What a round was sent from: its prompts or its painting are forgotten when it commits. */
export type RoundSource = "prompts" | "mask";

/** Timings for the latency benchmark and the end-to-end test (performance.now() ms). */
export interface Stats {
  runSentAt: number;
  interactiveDrawnAt: number;
  pendingMaskTimes: number[];
  roundFinishedAt: number;
  framesReceived: number;
  draws: number;
  /** Milliseconds spent decoding each streamed mask and drawing each canvas frame this round. */
  decodeMs: number[];
  drawMs: number[];
  lastError: string;
}

export interface RoundHost {
  send(message: RunMessage | ApplyMaskMessage, buffers: ArrayBuffer[]): void;
  /** The kernel's `status` trait. */
  status(): Status;
  flash(message: string): void;
  /** The round started on `frame` from `source` committed: drop what it was made of. */
  committed(frame: number, source: RoundSource): void;
  /** Run state changed: buttons and the canvas need a refresh. */
  changed(): void;
}

export class RoundClient {
  readonly masks = new MaskStore();
  readonly stats: Stats = {
    runSentAt: 0, interactiveDrawnAt: 0, pendingMaskTimes: [], roundFinishedAt: 0, framesReceived: 0, draws: 0,
    decodeMs: [], drawMs: [], lastError: "",
  };
  private requested = false;
  private source: RoundSource = "prompts";
  /** Frames the running round recomputes (null: no round runs). */
  range: { start: number; stop: number } | null = null;
  /**
   * The latency clock: the round's interactive frame until a draw shows its mask (-1: stopped),
   * and whether that mask has arrived. A round can finish before the next animation frame, so
   * the first draw after its mask arrived counts even when the round is over by then.
   */
  private latencyFrame = -1;
  private latencyMaskIn = false;

  constructor(private readonly host: RoundHost) {}

  /**
   * A round runs, or Run was pressed and the kernel has not answered yet (no double runs). A
   * warm-up or an autosave does not count: the kernel queues a new round behind them.
   */
  get busy(): boolean {
    const s = this.host.status();
    return this.requested || (s !== "idle" && s !== "preparing" && s !== "saving");
  }

  /** Send a round; false (and a note to the user) when one is running or was just sent. */
  send(message: RunMessage | ApplyMaskMessage, buffers: ArrayBuffer[], source: RoundSource): boolean {
    if (this.busy) {
      this.host.flash("a round is running: wait or cancel it");
      return false;
    }
    this.requested = true;
    this.source = source;
    this.stats.runSentAt = performance.now();
    this.stats.interactiveDrawnAt = 0;
    this.host.send(message, buffers);
    this.host.changed();
    return true;
  }

  started(message: RoundStarted): void {
    this.requested = false;
    this.range = { start: message.start, stop: message.stop };
    this.latencyFrame = message.frame;
    this.latencyMaskIn = false;
    this.masks.startRound(message.frame);
    this.stats.pendingMaskTimes = [];
    this.stats.decodeMs = [];
    this.stats.drawMs = [];
    this.stats.interactiveDrawnAt = 0;
  }

  /** Store a received mask; false when it is outdated (another version, or no round runs). */
  receiveMask(index: number, version: number, pending: boolean, ids: Ids, decodeStarted: number): boolean {
    if (!this.masks.accept(index, version, pending, ids)) return false;
    if (pending && index === this.latencyFrame) this.latencyMaskIn = true;
    if (pending) {
      const now = performance.now();
      this.stats.pendingMaskTimes.push(now);
      this.stats.decodeMs.push(now - decodeStarted);
    }
    return true;
  }

  finished(version: number): void {
    const frame = this.masks.runningFrame;
    if (frame >= 0) this.host.committed(frame, this.source);
    this.masks.finishRound(version);
    this.range = null;
    this.stats.roundFinishedAt = performance.now();
    this.host.changed();
  }

  cancelled(): void {
    this.latencyFrame = -1;
    this.masks.cancelRound();
    this.range = null;
    this.host.changed();
  }

  /** The kernel reported an error: a round that was sent but never started is not waited for. */
  failed(message: string): void {
    this.stats.lastError = message;
    this.requested = false;
    this.host.changed();
  }

  /** A canvas draw of `frame` took `ms`; the first one showing the round's own mask is the latency. */
  drawn(frame: number, ms: number): void {
    this.stats.draws += 1;
    if (this.masks.running) this.stats.drawMs.push(ms);
    if (frame === this.latencyFrame && this.latencyMaskIn && this.stats.runSentAt > 0) {
      this.stats.interactiveDrawnAt = performance.now();
      this.latencyFrame = -1;
    }
  }
}
