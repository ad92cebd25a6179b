/**
 * Wire protocol between this front end and the kernel. Mirrors `manet_widget/protocol.py`:
 * change both together. Binary payloads travel as buffers described by an {@link ArrayHeader};
 * never as JSON number lists. `js/tests/fixtures/protocol_golden.json` holds messages both sides
 * must build and parse identically. Version 2 added clicks, boxes and `apply_mask`.
 */
import { zlibSync } from "fflate";

export const PROTOCOL_VERSION = 2;

export type MapKind = "global" | "local" | "augmented";
export type MapOverlay = "none" | MapKind;
export type ExportFormat = "png" | "npz" | "coco" | "video";
export const MAP_KINDS: readonly MapKind[] = ["global", "local", "augmented"];
export const EXPORT_FORMATS: readonly ExportFormat[] = ["png", "npz", "coco", "video"];

export type Encoding = "raw" | "jpeg" | "zlib" | "empty" | "none";

export interface ArrayHeader {
  dtype: string;
  shape: number[];
  encoding: Encoding;
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
  kind: StrokeKind;
}

export interface BoxMeta {
  object_id: number;
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

export type OutgoingMessage =
  | { type: "request_frame"; index: number }
  | { type: "request_mask"; index: number }
  | { type: "request_map"; index: number; object_id: number; kind: MapKind }
  | { type: "run"; frame: number; strokes: StrokeMeta[]; header: ArrayHeader; boxes: BoxMeta[] }
  | { type: "apply_mask"; frame: number; header: ArrayHeader }
  | { type: "cancel" }
  | { type: "undo_round" }
  | { type: "reset" }
  | { type: "add_object"; name?: string }
  | { type: "rename_object"; object_id: number; name: string }
  | { type: "delete_object"; object_id: number }
  | { type: "export"; format: ExportFormat; path: string };

export interface FrameMessage { type: "frame"; index: number; header: ArrayHeader }
export interface MaskMessage { type: "mask"; index: number; version: number; pending: boolean; header: ArrayHeader }
export interface MapMessage {
  type: "map"; index: number; object_id: number; kind: MapKind; version: number;
  header: ArrayHeader; reason?: string;
}
export interface RoundStarted { type: "round_started"; round: number; frame: number }
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
export function encodeRun(frame: number, strokes: readonly Stroke[], boxes: readonly BoxPrompt[] = []): {
  content: Extract<OutgoingMessage, { type: "run" }>;
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
    },
    buffers: [points.buffer],
  };
}

/** Build the `apply_mask` message: a painted (H, W) uint8 id mask, zlib'd ("empty" when all 0). */
export function encodeApplyMask(frame: number, ids: Uint8Array, width: number, height: number): {
  content: Extract<OutgoingMessage, { type: "apply_mask" }>;
  buffers: ArrayBuffer[];
} {
  if (ids.length !== width * height) throw new Error(`mask has ${ids.length} values, expected ${width}x${height}`);
  const empty = !ids.some((v) => v !== 0);
  const header: ArrayHeader = { dtype: "uint8", shape: [height, width], encoding: empty ? "empty" : "zlib" };
  const data = empty ? null : zlibSync(ids, { level: 1 });
  return {
    content: { type: "apply_mask", frame, header },
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
      points: Array.from(points.subarray(offset, offset + m.count * 2)), kind: m.kind,
    });
    offset += m.count * 2;
  }
  return strokes;
}

function isHeader(value: unknown): value is ArrayHeader {
  if (typeof value !== "object" || value === null) return false;
  const h = value as Record<string, unknown>;
  return typeof h.encoding === "string" && (h.encoding === "none" ||
    (typeof h.dtype === "string" && Array.isArray(h.shape) && h.shape.every((n) => Number.isInteger(n))));
}

const REQUIRED: Record<IncomingMessage["type"], readonly string[]> = {
  frame: ["index", "header"],
  mask: ["index", "version", "pending", "header"],
  map: ["index", "object_id", "kind", "header"],
  round_started: ["round", "frame"],
  round_finished: ["round", "version"],
  round_cancelled: ["round"],
  exported: ["format", "path"],
  error: ["message"],
};

/** Validate a kernel message; returns null (and the caller reports it) when malformed. */
export function parseIncoming(value: unknown): IncomingMessage | null {
  if (typeof value !== "object" || value === null) return null;
  const record = value as Record<string, unknown>;
  const type = record.type;
  if (typeof type !== "string" || !(type in REQUIRED)) return null;
  for (const key of REQUIRED[type as IncomingMessage["type"]]) {
    if (!(key in record)) return null;
  }
  if ("header" in record && !isHeader(record.header)) return null;
  return value as IncomingMessage;
}

/** View a received buffer (anywidget hands DataViews) as bytes without copying. */
export function bytesOf(buffer: DataView | ArrayBuffer | Uint8Array): Uint8Array {
  if (buffer instanceof Uint8Array) return buffer;
  if (buffer instanceof ArrayBuffer) return new Uint8Array(buffer);
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}
