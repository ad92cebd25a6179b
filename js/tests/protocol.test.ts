import { describe, expect, it } from "vitest";
import { unzlibSync } from "fflate";
import golden from "./fixtures/protocol_golden.json";
import { decodeRun, encodeApplyMask, encodeRun, parseIncoming, bytesOf, PROTOCOL_VERSION, type BoxPrompt,
  type Stroke } from "../protocol";

const fromBase64 = (text: string): Uint8Array => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

describe("run message", () => {
  it("matches the bytes the Python side parses (shared golden file)", () => {
    expect(golden.protocol_version).toBe(PROTOCOL_VERSION);
    const { content, buffers } = encodeRun(golden.frame, golden.strokes as Stroke[], golden.boxes as BoxPrompt[]);
    expect(content).toEqual(golden.content);
    expect(new Uint8Array(buffers[0]!)).toEqual(fromBase64(golden.buffer_base64));
  });

  it("decodes back to the same strokes and clicks and skips empty strokes", () => {
    const strokes: Stroke[] = [
      { objectId: 2, radius: 3, points: [1, 2, 3, 4], kind: "stroke" },
      { objectId: 1, radius: 5, points: [], kind: "stroke" },
      { objectId: 0, radius: 1.5, points: [9.5, 8.25], kind: "click" },
    ];
    const { content, buffers } = encodeRun(4, strokes);
    expect(content.strokes.map((s) => [s.count, s.kind])).toEqual([[2, "stroke"], [1, "click"]]);
    expect(content.header.shape).toEqual([3, 2]);
    expect(content.boxes).toEqual([]);
    expect(decodeRun(content.strokes, buffers[0]!)).toEqual([strokes[0], strokes[2]]);
  });

  it("sends a click as one point and a stroke without a kind as a stroke", () => {
    const { content } = encodeRun(0, [
      { objectId: 1, radius: 2, points: [5, 6, 7, 8], kind: "click" }, { objectId: 1, radius: 2, points: [1, 1] }]);
    expect(content.strokes).toEqual([
      { object_id: 1, radius: 2, count: 1, kind: "click" }, { object_id: 1, radius: 2, count: 1, kind: "stroke" }]);
  });

  it("carries boxes alone with an empty point buffer", () => {
    const { content, buffers } = encodeRun(2, [], [{ objectId: 3, x0: 1, y0: 2, x1: 30.5, y1: 40 }]);
    expect(content.strokes).toEqual([]);
    expect(content.header.shape).toEqual([0, 2]);
    expect(buffers[0]!.byteLength).toBe(0);
    expect(content.boxes).toEqual([{ object_id: 3, x0: 1, y0: 2, x1: 30.5, y1: 40 }]);
  });
});

describe("apply_mask message", () => {
  it("zlibs the painted ids with the (H, W) header Python parses", () => {
    const g = golden.apply_mask;
    const ids = Uint8Array.from(g.values);
    const { content, buffers } = encodeApplyMask(g.frame, ids, g.width, g.height);
    expect(content).toEqual(g.content);
    expect(unzlibSync(new Uint8Array(buffers[0]!))).toEqual(ids);
    expect(unzlibSync(fromBase64(g.buffer_base64))).toEqual(ids); // the golden bytes Python wrote
  });

  it("sends an all-background mask without a buffer and refuses a wrong size", () => {
    const { content, buffers } = encodeApplyMask(1, new Uint8Array(12), 4, 3);
    expect(content.header).toEqual({ dtype: "uint8", shape: [3, 4], encoding: "empty" });
    expect(buffers).toEqual([]);
    expect(() => encodeApplyMask(1, new Uint8Array(11), 4, 3)).toThrow("expected 4x3");
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
