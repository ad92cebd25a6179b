import { describe, expect, it } from "vitest";
import { MaskStore } from "../masks";

const ids = (v: number): Uint8Array => new Uint8Array([v, v]);

describe("MaskStore", () => {
  it("requests committed masks once per version", () => {
    const m = new MaskStore();
    m.setVersion(1);
    expect(m.get(0, false)).toBeNull();
    expect(m.shouldRequest(0, false)).toBe(false);
    expect(m.get(0, true)).toBeUndefined();
    expect(m.shouldRequest(0, true)).toBe(true);
    expect(m.shouldRequest(0, true)).toBe(false);
    expect(m.accept(0, 1, false, ids(1))).toBe(true);
    expect(m.get(0, true)).toEqual(ids(1));
    expect(m.setVersion(2)).toBe(true);
    expect(m.get(0, true)).toBeUndefined();
    expect(m.accept(0, 1, false, ids(1))).toBe(false);
  });

  it("shows streamed masks during a round and restores committed ones on cancel", () => {
    const m = new MaskStore();
    m.setVersion(1);
    m.accept(4, 1, false, ids(1));
    expect(m.accept(4, 1, true, ids(9))).toBe(false); // no round running
    m.startRound(4);
    m.accept(4, 1, true, ids(9));
    expect(m.get(4, true)).toEqual(ids(9));
    expect([...m.pendingFrames()]).toEqual([4]);
    m.cancelRound();
    expect(m.get(4, true)).toEqual(ids(1));
    expect(m.pendingFrames().size).toBe(0);
  });

  it("promotes streamed masks when the round commits", () => {
    const m = new MaskStore();
    m.setVersion(1);
    m.accept(0, 1, false, ids(1));
    m.startRound(2);
    m.accept(2, 1, true, ids(5));
    m.accept(3, 1, true, null);
    m.finishRound(2);
    expect(m.version).toBe(2);
    expect(m.running).toBe(false);
    expect(m.get(2, true)).toEqual(ids(5));
    expect(m.get(3, true)).toBeNull();
    expect(m.get(0, true)).toBeUndefined(); // old version dropped, fetched again
    expect(m.setVersion(2)).toBe(false);
  });
});
