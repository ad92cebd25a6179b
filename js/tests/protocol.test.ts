import { describe, expect, it } from "vitest";
import golden from "./fixtures/protocol_golden.json";
import { decodeRun, encodeRun, parseIncoming, bytesOf, type Stroke } from "../protocol";

const fromBase64 = (text: string): Uint8Array => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

describe("run message", () => {
  it("matches the bytes the Python side parses (shared golden file)", () => {
    const { content, buffers } = encodeRun(golden.frame, golden.strokes as Stroke[]);
    expect(content).toEqual(golden.content);
    expect(new Uint8Array(buffers[0]!)).toEqual(fromBase64(golden.buffer_base64));
  });

  it("decodes back to the same strokes and skips empty strokes", () => {
    const strokes: Stroke[] = [
      { objectId: 2, radius: 3, points: [1, 2, 3, 4] },
      { objectId: 1, radius: 5, points: [] },
      { objectId: 0, radius: 1.5, points: [9.5, 8.25] },
    ];
    const { content, buffers } = encodeRun(4, strokes);
    expect(content.strokes.map((s) => s.count)).toEqual([2, 1]);
    expect(content.header.shape).toEqual([3, 2]);
    expect(decodeRun(content.strokes, buffers[0]!)).toEqual([strokes[0], strokes[2]]);
  });
});

describe("incoming messages", () => {
  it("accepts well-formed messages", () => {
    const mask = { type: "mask", index: 1, version: 2, pending: true, header: { dtype: "uint8", shape: [2, 3], encoding: "zlib" } };
    expect(parseIncoming(mask)).toBe(mask);
    expect(parseIncoming({ type: "round_finished", round: 1, version: 3 })).not.toBeNull();
    expect(parseIncoming({ type: "map", index: 0, object_id: 1, kind: "global", version: 0, header: { encoding: "none" }, reason: "x" })).not.toBeNull();
  });

  it("rejects unknown types, missing fields and bad headers", () => {
    expect(parseIncoming(null)).toBeNull();
    expect(parseIncoming({ type: "explode" })).toBeNull();
    expect(parseIncoming({ type: "mask", index: 1, version: 2, header: { dtype: "uint8", shape: [2], encoding: "zlib" } })).toBeNull();
    expect(parseIncoming({ type: "frame", index: 1, header: { dtype: "uint8", shape: ["a"], encoding: "jpeg" } })).toBeNull();
  });

  it("views DataView buffers without copying", () => {
    const backing = new Uint8Array([9, 8, 7, 6, 5]);
    const view = bytesOf(new DataView(backing.buffer, 1, 3));
    expect(Array.from(view)).toEqual([8, 7, 6]);
    expect(view.buffer).toBe(backing.buffer);
  });
});
