/**
 * Payload codecs: zlib'd id maps and matching maps, id map -> RGBA overlay, heat-map colouring.
 * Pure functions over typed arrays so they are testable without a canvas.
 */
import { unzlibSync } from "fflate";
import type { ArrayHeader } from "./protocol";

export type RGB = readonly [number, number, number];

/** Decode a uint8 (H, W) payload; `null` for an all-background ("empty") mask. */
export function decodeUint8Map(header: ArrayHeader, data: Uint8Array | undefined): Uint8Array | null {
  if (header.dtype !== "uint8" || header.shape.length !== 2) {
    throw new Error(`expected a uint8 (H, W) payload, got ${header.dtype} ${JSON.stringify(header.shape)}`);
  }
  const [h, w] = header.shape as [number, number];
  if (header.encoding === "empty") return null;
  if (data === undefined) throw new Error(`a ${header.encoding} payload arrived without its buffer`);
  const raw = header.encoding === "zlib" ? unzlibSync(data) : header.encoding === "raw" ? data : null;
  if (raw === null) throw new Error(`unsupported encoding ${header.encoding} for an id map`);
  if (raw.length !== h * w) throw new Error(`payload has ${raw.length} values, header says ${h}x${w}`);
  return raw;
}

export function hexToRgb(hex: string): RGB {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex.trim());
  if (m === null) return [255, 0, 255];
  return [parseInt(m[1]!, 16), parseInt(m[2]!, 16), parseInt(m[3]!, 16)];
}

export type OverlayMode = "fill" | "outline";

/**
 * Colour an id map. Boundary pixels (an object pixel with a 4-neighbour of another id) are
 * opaque; interior pixels get `fillAlpha` in fill mode and are transparent in outline mode.
 * Ids without a colour (and 0) stay transparent.
 */
export function idMapToRGBA(
  ids: Uint8Array, width: number, height: number, colors: ReadonlyMap<number, RGB>,
  mode: OverlayMode, fillAlpha: number, out?: Uint8ClampedArray,
): Uint8ClampedArray {
  const rgba = out ?? new Uint8ClampedArray(width * height * 4);
  rgba.fill(0);
  const lut = new Int16Array(256 * 3).fill(-1);
  for (const [id, c] of colors) {
    if (id > 0 && id < 256) lut.set(c, id * 3);
  }
  const fill = Math.round(Math.max(0, Math.min(1, fillAlpha)) * 255);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      const p = row + x;
      const id = ids[p]!;
      if (id === 0 || lut[id * 3]! < 0) continue;
      const edge = (x > 0 && ids[p - 1] !== id) || (x < width - 1 && ids[p + 1] !== id) ||
        (y > 0 && ids[p - width] !== id) || (y < height - 1 && ids[p + width] !== id);
      const alpha = edge ? 255 : mode === "fill" ? fill : 0;
      if (alpha === 0) continue;
      const o = p * 4;
      rgba[o] = lut[id * 3]!;
      rgba[o + 1] = lut[id * 3 + 1]!;
      rgba[o + 2] = lut[id * 3 + 2]!;
      rgba[o + 3] = alpha;
    }
  }
  return rgba;
}

const HEAT_STOPS: readonly [number, RGB][] = [
  [0.0, [13, 8, 135]], [0.25, [126, 3, 168]], [0.5, [204, 71, 120]], [0.75, [248, 149, 64]], [1.0, [240, 249, 33]],
];

/** 256-entry colour table: index = closeness to the object (255 = on it). */
export const HEAT_LUT: Uint8Array = (() => {
  const lut = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = i / 255;
    let k = 0;
    while (k < HEAT_STOPS.length - 2 && t > HEAT_STOPS[k + 1]![0]) k++;
    const [t0, c0] = HEAT_STOPS[k]!;
    const [t1, c1] = HEAT_STOPS[k + 1]!;
    const f = (t - t0) / (t1 - t0);
    for (let ch = 0; ch < 3; ch++) lut[i * 3 + ch] = Math.round(c0[ch]! + f * (c1[ch]! - c0[ch]!));
  }
  return lut;
})();

/** Colour a distance map (0 = close to the object, 255 = far) as a heat map. */
export function heatToRGBA(distance: Uint8Array, alpha: number, out?: Uint8ClampedArray): Uint8ClampedArray {
  const rgba = out ?? new Uint8ClampedArray(distance.length * 4);
  const a = Math.round(Math.max(0, Math.min(1, alpha)) * 255);
  for (let p = 0; p < distance.length; p++) {
    const c = 255 - distance[p]!;
    rgba[p * 4] = HEAT_LUT[c * 3]!;
    rgba[p * 4 + 1] = HEAT_LUT[c * 3 + 1]!;
    rgba[p * 4 + 2] = HEAT_LUT[c * 3 + 2]!;
    rgba[p * 4 + 3] = a;
  }
  return rgba;
}

