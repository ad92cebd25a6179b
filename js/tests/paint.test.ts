import { describe, expect, it } from "vitest";
import { PaintStore, paintDisc, paintSegment } from "../paint";

const W = 12;
const H = 8;
const grid = (ids: Uint8Array): string[] =>
  Array.from({ length: H }, (_, y) => Array.from(ids.subarray(y * W, (y + 1) * W)).join(""));

describe("brush", () => {
  it("paints the pixels whose centres lie within the radius", () => {
    const ids = new Uint8Array(W * H);
    const record: [number, number][] = [];
    ids[4 * W + 4] = 2; // already painted: not recorded again
    expect(paintDisc(ids, W, H, 4.5, 4.5, 2.3, "paint", 2, (p, before) => record.push([p, before]))).toBe(20);
    expect(grid(ids).slice(1, 8)).toEqual([
      "000000000000", "000222000000", "002222200000", "002222200000", "002222200000", "000222000000", "000000000000"]);
    expect(record).toHaveLength(20);
    expect(record.every(([p, before]) => before === 0 && p !== 4 * W + 4)).toBe(true);
    expect(paintDisc(ids, W, H, 4.5, 4.5, 2.3, "paint", 2)).toBe(0); // nothing left to change
    expect(paintDisc(ids, W, H, 0.2, 7.9, 0.1, "paint", 5)).toBe(1); // a tiny brush still hits its pixel
    expect(ids[7 * W]).toBe(5);
  });

  it("erases only the selected object, or every object with background selected", () => {
    const ids = new Uint8Array(W * H).fill(1);
    ids.fill(3, 0, W * 4);
    expect(paintDisc(ids, W, H, 6, 4, 3, "erase", 3)).toBeGreaterThan(0);
    expect(grid(ids)[3]).toMatch(/^333[0]+333$/); // the erased part of object 3
    expect(grid(ids)[4]).toBe("111111111111"); // object 1 untouched
    paintDisc(ids, W, H, 6, 4, 3, "erase", 0);
    expect(grid(ids)[4]).toMatch(/^111[0]+111$/);
    paintDisc(ids, W, H, 6, 4, 2, "paint", 0); // painting background is erasing too
    expect(ids[4 * W + 6]).toBe(0);
  });

  it("leaves no gap along a fast drag", () => {
    const ids = new Uint8Array(W * H);
    paintSegment(ids, W, H, 0.5, 4.5, 11.5, 4.5, 1, "paint", 7);
    expect(grid(ids)[4]).toBe("777777777777");
  });
});

describe("PaintStore", () => {
  it("edits a copy of the shown mask, one undo step per stroke", () => {
    const base = new Uint8Array(W * H).fill(1);
    const store = new PaintStore();
    const stroke = store.startStroke(2, base, W, H, 1, "paint", 4);
    stroke.to(2, 2);
    stroke.to(9, 2);
    stroke.finish();
    const after = store.ids(2)!.slice();
    expect(base.every((v) => v === 1)).toBe(true);
    expect(grid(after).slice(0, 4)).toEqual(["111111111111", "144444444411", "144444444411", "111111111111"]);
    expect(store.edited(2) && store.canUndo(2) && !store.canRedo(2)).toBe(true);
    const erase = store.startStroke(2, null, W, H, 10, "erase", 1);
    erase.to(6, 4);
    erase.finish();
    expect(store.ids(2)!.every((v) => v === 0 || v === 4)).toBe(true);
    const revision = store.revision(2);
    expect(store.undo(2)).toBe(true);
    expect(store.ids(2)).toEqual(after);
    expect(store.revision(2)).toBeGreaterThan(revision);
    expect(store.undo(2)).toBe(true);
    expect(store.ids(2)).toEqual(base);
    expect(store.edited(2)).toBe(false);
    expect(store.redo(2) && store.redo(2)).toBe(true);
    expect(store.ids(2)!.every((v) => v === 0 || v === 4)).toBe(true);
    expect(store.editedFrames()).toEqual([2]);
    expect(store.forget(2)).toBe(true);
    expect(store.has(2)).toBe(false);
  });

  it("starts from zeros when the frame shows no mask, and records no step for a no-op stroke", () => {
    const store = new PaintStore();
    const stroke = store.startStroke(0, null, W, H, 2, "erase", 1);
    stroke.to(5, 5);
    stroke.finish();
    expect(store.has(0) && !store.edited(0)).toBe(true);
    expect(store.ids(0)!.every((v) => v === 0)).toBe(true);
  });
});
