import { describe, expect, it } from "vitest";
import { frameAtX, PADDING, xOfFrame } from "../timeline";

describe("timeline geometry", () => {
  it("maps frames to cell centres and back", () => {
    for (const t of [0, 1, 17, 99]) expect(frameAtX(xOfFrame(t, 100, 500), 100, 500)).toBe(t);
    expect(xOfFrame(0, 10, 2 * PADDING + 100)).toBe(PADDING + 5);
  });

  it("clamps positions outside the track", () => {
    expect(frameAtX(-50, 10, 300)).toBe(0);
    expect(frameAtX(1000, 10, 300)).toBe(9);
  });
});
