/**
 * Image-size layers drawn over the frame: the coloured mask overlay of the frame on screen
 * (rebuilt only when its inputs change) and the cached matching-map heat maps.
 */
import { LruCache } from "./cache";
import { heatToRGBA, hexToRgb, idMapToRGBA, type OverlayMode, type RGB } from "./codecs";
import type { Ids } from "./masks";
import type { MapKind } from "./protocol";
import type { Layer } from "./render";
import type { ObjectEntry } from "./traits";

export type MapEntry = { layer: Layer } | { reason: string };

/** An offscreen canvas holding `rgba`; null where no 2-D context exists (or sizes are wrong). */
export function makeLayer(rgba: Uint8ClampedArray, width: number, height: number): Layer | null {
  if (width <= 0 || height <= 0 || rgba.length !== width * height * 4) return null;
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  if (ctx === null) return null;
  const image = ctx.createImageData(width, height);
  image.data.set(rgba);
  ctx.putImageData(image, 0, 0);
  return { source: canvas, width, height };
}

export function mapKey(version: number, frame: number, objectId: number, kind: MapKind): string {
  return `${version}:${frame}:${objectId}:${kind}`;
}

export class Layers {
  private maps = new LruCache<string, MapEntry>(24);
  private requested = new Set<string>();
  private overlay: Layer | null = null;
  private overlayKey = "";
  private overlaySource: Ids = null;

  /** The overlay of `ids`, reusing the last one when nothing it depends on changed. */
  overlayFor(ids: Ids | undefined, key: string, objects: readonly ObjectEntry[], width: number, height: number,
    mode: OverlayMode, opacity: number): Layer | null {
    if (ids === undefined || ids === null || ids.length !== width * height) return null;
    const fullKey = `${key}:${mode}:${opacity}:${objects.map((o) => o.color).join()}`;
    if (this.overlay !== null && this.overlayKey === fullKey && this.overlaySource === ids) return this.overlay;
    const colors = new Map<number, RGB>(objects.map((o) => [o.id, hexToRgb(o.color)]));
    this.overlay = makeLayer(idMapToRGBA(ids, width, height, colors, mode, opacity), width, height);
    this.overlayKey = fullKey;
    this.overlaySource = ids;
    return this.overlay;
  }

  /** The cached map for `key`; `request()` is called once when it is missing. */
  map(key: string, request: () => void): MapEntry | undefined {
    const entry = this.maps.get(key);
    if (entry === undefined && !this.requested.has(key)) {
      this.requested.add(key);
      request();
    }
    return entry;
  }

  storeMap(key: string, values: Ids, reason: string, width: number, height: number): void {
    this.requested.delete(key);
    if (values === null) {
      this.maps.set(key, { reason });
      return;
    }
    const layer = makeLayer(heatToRGBA(values, 1), width, height);
    this.maps.set(key, layer === null ? { reason: "the map does not match the frame size" } : { layer });
  }

  clearMaps(): void {
    this.maps.clear();
    this.requested.clear();
  }

  get mapCount(): number {
    return this.maps.size;
  }
}
