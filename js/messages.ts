/**
 * Messages from the kernel (see `protocol.ts`): frames, masks (pending ones stream during a
 * round), matching maps, the round's lifecycle, exports and errors, applied to a
 * {@link MessageTarget} - in the widget the view, in tests a stub around a real round client.
 */
import { decodeUint8Map } from "./codecs";
import { mapKey, type Layers } from "./layers";
import { bytesOf, parseIncoming, type IncomingMessage } from "./protocol";
import type { RoundClient } from "./rounds";

/** What kernel messages change: the round client, frames, map layers, and what is on screen. */
export interface MessageTarget {
  readonly rounds: RoundClient;
  readonly layers: Pick<Layers, "storeMap" | "clearMaps">;
  receiveFrame(index: number, jpeg: Uint8Array | undefined): void;
  /** The frame on screen and the video's size. */
  currentFrame(): number;
  size(): { width: number; height: number };
  invalidate(): void;
  timelineSoon(): void;
  flash(message: string): void;
  showLocalError(message: string): void;
}

export function handleMessage(target: MessageTarget, raw: unknown, buffers: DataView[]): void {
  const msg = parseIncoming(raw);
  if (msg === null) {
    target.rounds.stats.lastError = `malformed message from the kernel: ${JSON.stringify(raw).slice(0, 120)}`;
    console.error("manet annotator:", target.rounds.stats.lastError);
    return;
  }
  try {
    dispatch(target, msg, buffers.map((b) => bytesOf(b)));
  } catch (error) {
    target.rounds.stats.lastError = String(error);
    console.error("manet annotator:", error);
    target.showLocalError(String(error));
  }
}

function dispatch(target: MessageTarget, msg: IncomingMessage, buffers: Uint8Array[]): void {
  const rounds = target.rounds;
  switch (msg.type) {
    case "frame":
      target.receiveFrame(msg.index, buffers[0]);
      break;
    case "mask": {
      const started = performance.now();
      const ids = decodeUint8Map(msg.header, buffers[0]);
      if (rounds.receiveMask(msg.index, msg.version, msg.pending, ids, started)) {
        if (msg.index === target.currentFrame()) target.invalidate();
        target.timelineSoon();
      }
      break;
    }
    case "map": {
      const values = msg.header.encoding === "none" ? null : decodeUint8Map(msg.header, buffers[0]);
      const { width, height } = target.size();
      target.layers.storeMap(mapKey(msg.version, msg.index, msg.object_id, msg.kind), values, msg.reason ?? "no map",
        width, height);
      if (msg.index === target.currentFrame()) target.invalidate();
      break;
    }
    case "round_started":
      rounds.started(msg);
      target.timelineSoon();
      break;
    case "round_finished":
      rounds.finished(msg.version);
      target.layers.clearMaps();
      target.invalidate();
      break;
    case "round_cancelled":
      rounds.cancelled();
      target.invalidate();
      break;
    case "exported":
      target.flash(`saved ${msg.path}`);
      break;
    case "error":
      rounds.failed(msg.message);
      break;
  }
}
