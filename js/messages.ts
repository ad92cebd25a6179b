/**
 * Messages from the kernel (see `protocol.ts`): frames, masks (pending ones stream during a
 * round), matching maps, the round's lifecycle, exports and errors, applied to a view.
 */
import { decodeUint8Map } from "./codecs";
import { mapKey } from "./layers";
import { bytesOf, parseIncoming, type IncomingMessage } from "./protocol";
import type { AnnotatorView } from "./view";

export function handleMessage(v: AnnotatorView, raw: unknown, buffers: DataView[]): void {
  const msg = parseIncoming(raw);
  if (msg === null) {
    v.stats.lastError = `malformed message from the kernel: ${JSON.stringify(raw).slice(0, 120)}`;
    console.error("manet annotator:", v.stats.lastError);
    return;
  }
  try {
    dispatch(v, msg, buffers.map((b) => bytesOf(b)));
  } catch (error) {
    v.stats.lastError = String(error);
    console.error("manet annotator:", error);
    v.showLocalError(String(error));
  }
}

function dispatch(v: AnnotatorView, msg: IncomingMessage, buffers: Uint8Array[]): void {
  switch (msg.type) {
    case "frame":
      v.receiveFrame(msg.index, buffers[0]);
      break;
    case "mask": {
      const started = performance.now();
      const ids = decodeUint8Map(msg.header, buffers[0]);
      if (v.masks.accept(msg.index, msg.version, msg.pending, ids)) {
        if (msg.pending) {
          v.stats.pendingMaskTimes.push(performance.now());
          v.stats.decodeMs.push(performance.now() - started);
        }
        if (msg.index === v.frame) v.invalidate();
        v.drawTimelineSoon();
      }
      break;
    }
    case "map": {
      const values = msg.header.encoding === "none" ? null : decodeUint8Map(msg.header, buffers[0]);
      v.layers.storeMap(mapKey(msg.version, msg.index, msg.object_id, msg.kind), values, msg.reason ?? "no map",
        v.get("width"), v.get("height"));
      if (msg.index === v.frame) v.invalidate();
      break;
    }
    case "round_started":
      v.runRequested = false;
      v.masks.startRound(msg.frame);
      v.stats.pendingMaskTimes = [];
      v.stats.decodeMs = [];
      v.stats.drawMs = [];
      v.stats.interactiveDrawnAt = 0;
      break;
    case "round_finished":
      if (v.masks.runningFrame >= 0) {
        if (v.sentKind === "mask") v.paint.forget(v.masks.runningFrame);
        else v.prompts.forget(v.masks.runningFrame);
      }
      v.masks.finishRound(msg.version);
      v.layers.clearMaps();
      v.stats.roundFinishedAt = performance.now();
      v.syncControls();
      v.invalidate();
      break;
    case "round_cancelled":
      v.masks.cancelRound();
      v.syncControls();
      v.invalidate();
      break;
    case "exported":
      v.flash(`saved ${msg.path}`);
      break;
    case "error":
      v.stats.lastError = msg.message;
      v.runRequested = false;
      v.syncControls();
      break;
  }
}
