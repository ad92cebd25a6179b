import { describe, expect, it } from "vitest";
import { describeRange, propagationFor, rangeSpan, withEnd, type RangeTraits } from "../range";

const traits = (start: number, stop: number, direction: RangeTraits["direction"] = "both"): RangeTraits =>
  ({ start, stop, direction, numFrames: 20 });

describe("propagation range", () => {
  it("sends nothing for every frame both ways, and fills open ends with the video's", () => {
    expect(propagationFor(traits(-1, -1), 7)).toEqual({ propagation: null });
    expect(propagationFor(traits(-1, -1, "forward"), 7)).toEqual({ propagation: { start: 0, stop: 19, direction: "forward" } });
    expect(propagationFor(traits(5, -1), 7)).toEqual({ propagation: { start: 5, stop: 19, direction: "both" } });
    expect(rangeSpan(traits(-1, 9))).toEqual({ start: 0, stop: 9 });
    expect(describeRange(traits(4, 12))).toBe("frames 5-13");
    expect(describeRange(traits(-1, -1))).toBe("all frames");
  });

  it("refuses a frame outside the range with a message that says how to fix it", () => {
    const result = propagationFor(traits(4, 12), 15);
    expect(result).toEqual({ error: expect.stringContaining("frame 16 is outside the propagation range 5-13") });
    expect("error" in result && result.error).toContain("Shift+drag on the timeline");
  });

  it("sets one end at a time and swaps crossed ends", () => {
    expect(withEnd({ start: -1, stop: -1 }, "stop", 12)).toEqual([-1, 12]);
    expect(withEnd({ start: -1, stop: 12 }, "start", 4)).toEqual([4, 12]);
    expect(withEnd({ start: 4, stop: 12 }, "start", 15)).toEqual([12, 15]);
  });
});
