import { describe, expect, it } from "vitest";
import { MAX_ZOOM, Viewport } from "../viewport";

describe("Viewport", () => {
  it("fits and centres the frame", () => {
    const v = new Viewport(480, 270, 640, 480);
    expect(v.scale).toBeCloseTo(640 / 480);
    expect(v.offsetX).toBeCloseTo(0);
    expect(v.offsetY).toBeCloseTo((480 - 270 * (640 / 480)) / 2);
    expect(v.toImage(320, 240)).toEqual([240, 135]);
  });

  it("maps screen to image and back under zoom and pan", () => {
    const v = new Viewport(100, 50, 200, 100);
    v.zoomAt(30, 40, 3);
    v.panBy(-12, 7);
    const [x, y] = v.toImage(55, 66);
    const [sx, sy] = v.toScreen(x, y);
    expect(sx).toBeCloseTo(55);
    expect(sy).toBeCloseTo(66);
    expect(v.scale).toBeCloseTo(6);
  });

  it("zooms about the pointer and clamps the zoom", () => {
    const v = new Viewport(100, 100, 100, 100);
    const before = v.toImage(20, 70);
    v.zoomAt(20, 70, 2.5);
    const after = v.toImage(20, 70);
    expect(after[0]).toBeCloseTo(before[0]);
    expect(after[1]).toBeCloseTo(before[1]);
    v.zoomAt(0, 0, 1e6);
    expect(v.zoom).toBe(MAX_ZOOM);
  });

  it("keeps the centre when resized while zoomed", () => {
    const v = new Viewport(100, 100, 100, 100);
    v.zoomAt(75, 75, 4);
    const centre = v.toImage(50, 50);
    v.resize(300, 300);
    const [cx, cy] = v.toImage(150, 150);
    expect(cx).toBeCloseTo(centre[0]);
    expect(cy).toBeCloseTo(centre[1]);
    expect(v.zoom).toBeCloseTo(4);
    expect(v.contains(-1, 5)).toBe(false);
    expect(v.contains(100, 100)).toBe(true);
  });
});
