import { describe, expect, it, vi } from "vitest";
import { Layers, makeLayer, mapKey } from "../layers";

describe("Layers", () => {
  it("asks for a missing map once and keeps the answer", () => {
    const layers = new Layers();
    const request = vi.fn();
    const key = mapKey(1, 3, 2, "global");
    expect(layers.map(key, request)).toBeUndefined();
    expect(layers.map(key, request)).toBeUndefined();
    expect(request).toHaveBeenCalledTimes(1);
    layers.storeMap(key, null, "no local map for this frame yet", 4, 2);
    expect(layers.map(key, request)).toEqual({ reason: "no local map for this frame yet" });
    layers.clearMaps();
    expect(layers.map(key, request)).toBeUndefined();
    expect(request).toHaveBeenCalledTimes(2);
  });

  it("builds no overlay for unknown or mis-sized masks (and no layer without a 2-D context)", () => {
    const layers = new Layers();
    const objects = [{ id: 1, name: "a", color: "#ff0000" }];
    expect(layers.overlayFor(undefined, "k", objects, 2, 2, "fill", 0.5)).toBeNull();
    expect(layers.overlayFor(new Uint8Array(3), "k", objects, 2, 2, "fill", 0.5)).toBeNull();
    expect(makeLayer(new Uint8ClampedArray(8), 2, 2)).toBeNull(); // 2x2 needs 16 values
  });
});
