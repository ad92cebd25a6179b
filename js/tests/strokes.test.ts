import { describe, expect, it } from "vitest";
import { pressureScale, StrokeBuilder } from "../strokes";

describe("StrokeBuilder", () => {
  it("thins points closer than the spacing and clamps to the frame", () => {
    const b = new StrokeBuilder(1, 4, 100, 50, 2);
    expect(b.add(10, 10)).toBe(true);
    expect(b.add(10.5, 10.5)).toBe(false);
    expect(b.add(13, 10)).toBe(true);
    expect(b.add(120, -5)).toBe(true);
    expect(b.stroke().points).toEqual([10, 10, 13, 10, 100, 0]);
  });

  it("scales the radius by the mean pen pressure only for pens", () => {
    expect(pressureScale(0.5, "mouse")).toBe(1);
    expect(pressureScale(0.25, "pen")).toBe(0.5);
    expect(pressureScale(1, "pen")).toBe(2);
    expect(pressureScale(0, "pen")).toBe(1);
    const b = new StrokeBuilder(2, 4, 100, 100, 1);
    b.add(1, 1, 0.5);
    b.add(5, 5, 1.5);
    expect(b.stroke().radius).toBe(4);
  });
});
