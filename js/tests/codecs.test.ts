import { describe, expect, it } from "vitest";
import golden from "./fixtures/protocol_golden.json";
import { zlibSync } from "fflate";
import type { ArrayHeader } from "../protocol";
import { decodeUint8Map, HEAT_LUT, heatToRGBA, hexToRgb, idMapToRGBA, type RGB } from "../codecs";

const fromBase64 = (text: string): Uint8Array => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

describe("id map payloads", () => {
  it("inflates a mask compressed by Python's zlib", () => {
    const data = fromBase64(golden.mask.buffer_base64);
    const ids = decodeUint8Map(golden.mask.header as ArrayHeader, data);
    expect(Array.from(ids!)).toEqual(golden.mask.values);
  });

  it("treats empty masks as null and rejects size mismatches", () => {
    expect(decodeUint8Map({ dtype: "uint8", shape: [4, 4], encoding: "empty" }, undefined)).toBeNull();
    const wrong = zlibSync(new Uint8Array(10));
    expect(() => decodeUint8Map({ dtype: "uint8", shape: [4, 4], encoding: "zlib" }, wrong)).toThrow(/10 values/);
    expect(() => decodeUint8Map({ dtype: "float32", shape: [4, 4], encoding: "zlib" }, wrong)).toThrow(/uint8/);
    expect(() => decodeUint8Map({ dtype: "uint8", shape: [4, 4], encoding: "zlib" }, undefined)).toThrow(/without its buffer/);
  });
});

describe("overlay colouring", () => {
  // 5x5 with a 3x3 block of object 1 in the middle.
  const ids = new Uint8Array(25);
  for (const y of [1, 2, 3]) for (const x of [1, 2, 3]) ids[y * 5 + x] = 1;
  const colors = new Map<number, RGB>([[1, [255, 0, 0]]]);
  const alpha = (rgba: Uint8ClampedArray, x: number, y: number): number => rgba[(y * 5 + x) * 4 + 3]!;

  it("fills the interior with the opacity and draws boundaries opaque", () => {
    const rgba = idMapToRGBA(ids, 5, 5, colors, "fill", 0.5);
    expect(alpha(rgba, 2, 2)).toBe(128);
    expect(alpha(rgba, 1, 1)).toBe(255);
    expect(alpha(rgba, 0, 0)).toBe(0);
    expect(Array.from(rgba.slice((2 * 5 + 2) * 4, (2 * 5 + 2) * 4 + 3))).toEqual([255, 0, 0]);
  });

  it("keeps only boundaries in outline mode and skips ids without a colour", () => {
    const rgba = idMapToRGBA(ids, 5, 5, colors, "outline", 0.5);
    expect(alpha(rgba, 2, 2)).toBe(0);
    expect(alpha(rgba, 3, 2)).toBe(255);
    const other = idMapToRGBA(ids, 5, 5, new Map(), "fill", 1);
    expect(other.every((v) => v === 0)).toBe(true);
  });

  it("parses hex colours", () => {
    expect(hexToRgb("#3cb44b")).toEqual([60, 180, 75]);
    expect(hexToRgb("nonsense")).toEqual([255, 0, 255]);
  });

  it("colours distance maps hot where close", () => {
    const rgba = heatToRGBA(new Uint8Array([0, 255]), 1);
    expect(Array.from(rgba.slice(0, 3))).toEqual(Array.from(HEAT_LUT.slice(255 * 3)));
    expect(Array.from(rgba.slice(4, 7))).toEqual([13, 8, 135]);
    const brightness = (i: number): number => HEAT_LUT[i * 3]! + HEAT_LUT[i * 3 + 1]! + HEAT_LUT[i * 3 + 2]!;
    expect(brightness(255)).toBeGreaterThan(brightness(128));
    expect(brightness(128)).toBeGreaterThan(brightness(0));
  });
});
