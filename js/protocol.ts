/**
 * Wire protocol between this front end and the kernel. Mirrors `manet_widget/protocol/`: change
 * both together, bump {@link PROTOCOL_VERSION} on both sides and regenerate
 * `manet_widget/protocol/schema.json` (`python -m manet_widget.protocol.schema --write`); the
 * schema built in `schema.ts` from these types must equal it (`js/tests/protocol.test.ts`).
 * Binary payloads travel as buffers described by an {@link ArrayHeader}, never as JSON number
 * lists. `js/tests/fixtures/protocol_golden.json` holds messages both sides must build and parse
 * identically. Version 2 added clicks, boxes and `apply_mask`; 3 the propagation range, `undo` of
 * any session step (in place of `undo_round`) and the range in `round_started`.
 */
import { zlibSync } from "fflate";
import { REPLY_SCHEMAS, validate } from "./schema";

export const PROTOCOL_VERSION = 3;

export type MapKind = "global" | "local" | "augmented";
export type MapOverlay = "none" | MapKind;
export type ExportFormat = "png" | "npz" | "coco" | "video";
export const MAP_KINDS: readonly MapKind[] = ["global", "local", "augmented"];
export const EXPORT_FORMATS: readonly ExportFormat[] = ["png", "npz", "coco", "video"];

export type Encoding = "raw" | "jpeg" | "zlib" | "empty";
export type Direction = "both" | "forward" | "backward";
export const DIRECTIONS: readonly Direction[] = ["both", "forward", "backward"];

export interface ArrayHeader {
  dtype: string;
  shape: number[];
  encoding: Encoding;
}

/** The header of a map that does not exist (the reply's `reason` says why). */
export interface NoArray {
  encoding: "none";
}

/** The frames a round recomputes: start..stop (inclusive), going `direction` from the annotated frame. */
export interface PropagationRange {
  start: number;
  stop: number;
  direction: Direction;
}

export type StrokeKind = "stroke" | "click";

/**
 * One stroke, or one click (`kind: "click"`: a single point, a disc of `radius`), in
 * original-frame pixels. `points` is flat: x0, y0, x1, y1, ... Object 0 is background.
 */
export interface Stroke {
  objectId: number;
  radius: number;
  points: number[];
  kind?: StrokeKind;
}

/** A box prompt for one object (id >= 1), corners in original-frame pixels, x0 < x1, y0 < y1. */
export interface BoxPrompt {
  objectId: number;
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

export interface StrokeMeta {
  object_id: number;
  radius: number | null;
  count: number;
  kind?: StrokeKind;
}

export interface BoxMeta {
  object_id: number;
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

export interface RequestFrame { type: "request_frame"; index: number }
export interface RequestMask { type: "request_mask"; index: number }
export interface RequestMap { type: "request_map"; index: number; object_id: number; kind: MapKind }
export interface RunMessage {
  type: "run"; frame: number; strokes: StrokeMeta[]; header: ArrayHeader; boxes?: BoxMeta[];
  propagation?: PropagationRange;
}
export interface ApplyMaskMessage { type: "apply_mask"; frame: number; header: ArrayHeader; propagation?: PropagationRange }
export interface CancelMessage { type: "cancel" }
/** Undo the session's last step: a round or an object deletion. */
export interface UndoMessage { type: "undo" }
export interface ResetMessage { type: "reset" }
export interface AddObject { type: "add_object"; name?: string }
export interface RenameObject { type: "rename_object"; object_id: number; name: string }
export interface DeleteObject { type: "delete_object"; object_id: number }
export interface ExportMessage { type: "export"; format: ExportFormat; path: string }

export type OutgoingMessage =
  | RequestFrame | RequestMask | RequestMap | RunMessage | ApplyMaskMessage | CancelMessage | UndoMessage
  | ResetMessage | AddObject | RenameObject | DeleteObject | ExportMessage;

export interface FrameMessage { type: "frame"; index: number; header: ArrayHeader }
export interface MaskMessage { type: "mask"; index: number; version: number; pending: boolean; header: ArrayHeader }
export interface MapMessage {
  type: "map"; index: number; object_id: number; kind: MapKind; version: number;
  header: ArrayHeader | NoArray; reason?: string;
}
/** Round `round` started on `frame` and recomputes frames start..stop. */
export interface RoundStarted { type: "round_started"; round: number; frame: number; start: number; stop: number }
export interface RoundFinished { type: "round_finished"; round: number; version: number }
export interface RoundCancelled { type: "round_cancelled"; round: number }
export interface Exported { type: "exported"; format: ExportFormat; path: string }
export interface ErrorMessage { type: "error"; message: string }

export type IncomingMessage =
  | FrameMessage | MaskMessage | MapMessage | RoundStarted | RoundFinished | RoundCancelled
  | Exported | ErrorMessage;

/**
 * Build the `run` message: per-stroke metadata plus one float32 buffer of every stroke's and
 * click's points (empty when there are only boxes), and the boxes as small JSON records.
 */
export function encodeRun(frame: number, strokes: readonly Stroke[], boxes: readonly BoxPrompt[] = [],
  propagation: PropagationRange | null = null): {
  content: RunMessage;
  buffers: ArrayBuffer[];
} {
  const usable = strokes.filter((s) => s.points.length >= 2).map((s) =>
    s.kind === "click" ? { ...s, points: s.points.slice(0, 2) } : s);
  const total = usable.reduce((sum, s) => sum + s.points.length / 2, 0);
  const points = new Float32Array(total * 2);
  let offset = 0;
  const meta: StrokeMeta[] = usable.map((s) => {
    const count = Math.floor(s.points.length / 2);
    points.set(s.points.slice(0, count * 2), offset);
    offset += count * 2;
    return { object_id: s.objectId, radius: s.radius, count, kind: s.kind ?? "stroke" };
  });
  return {
    content: {
      type: "run", frame, strokes: meta,
      header: { dtype: "float32", shape: [total, 2], encoding: "raw" },
      boxes: boxes.map((b) => ({ object_id: b.objectId, x0: b.x0, y0: b.y0, x1: b.x1, y1: b.y1 })),
      ...(propagation === null ? {} : { propagation }),
    },
    buffers: [points.buffer],
  };
}

/** Build the `apply_mask` message: a painted (H, W) uint8 id mask, zlib'd ("empty" when all 0). */
export function encodeApplyMask(frame: number, ids: Uint8Array, width: number, height: number,
  propagation: PropagationRange | null = null): {
  content: ApplyMaskMessage;
  buffers: ArrayBuffer[];
} {
  if (ids.length !== width * height) throw new Error(`mask has ${ids.length} values, expected ${width}x${height}`);
  const empty = !ids.some((v) => v !== 0);
  const header: ArrayHeader = { dtype: "uint8", shape: [height, width], encoding: empty ? "empty" : "zlib" };
  const data = empty ? null : zlibSync(ids, { level: 1 });
  return {
    content: { type: "apply_mask", frame, header, ...(propagation === null ? {} : { propagation }) },
    buffers: data === null ? [] : [data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer],
  };
}

/** Inverse of {@link encodeRun} (tests and tools). */
export function decodeRun(meta: readonly StrokeMeta[], buffer: ArrayBuffer): Stroke[] {
  const points = new Float32Array(buffer);
  const strokes: Stroke[] = [];
  let offset = 0;
  for (const m of meta) {
    strokes.push({
      objectId: m.object_id, radius: m.radius ?? 0,
      points: Array.from(points.subarray(offset, offset + m.count * 2)), kind: m.kind ?? "stroke",
    });
    offset += m.count * 2;
  }
  return strokes;
}

/**
 * Validate a kernel message against the reply schema; returns null (and the caller reports it)
 * when it is malformed.
 */
export function parseIncoming(value: unknown): IncomingMessage | null {
  if (typeof value !== "object" || value === null) return null;
  const type = (value as Record<string, unknown>).type;
  if (typeof type !== "string" || !Object.hasOwn(REPLY_SCHEMAS, type)) return null;
  return validate(REPLY_SCHEMAS[type as IncomingMessage["type"]], value) ? (value as IncomingMessage) : null;
}

/** View a received buffer (anywidget hands DataViews) as bytes without copying. */
export function bytesOf(buffer: DataView | ArrayBuffer | Uint8Array): Uint8Array {
  if (buffer instanceof Uint8Array) return buffer;
  if (buffer instanceof ArrayBuffer) return new Uint8Array(buffer);
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}
