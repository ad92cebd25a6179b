/**
 * Decoded video frames held by a view: asked for lazily (at most one request in flight per
 * frame), decoded off the message handler, kept in an LRU of bitmaps.
 */
import { LruCache } from "./cache";
import type { RequestFrame } from "./protocol";

export type Bitmap = CanvasImageSource & { close?: () => void };
export type ImageDecoder = (jpeg: Uint8Array) => Promise<Bitmap>;

export const defaultDecoder: ImageDecoder = (jpeg) =>
  createImageBitmap(new Blob([jpeg as BlobPart], { type: "image/jpeg" }));

export interface FrameCacheHost {
  send(message: RequestFrame): void;
  numFrames(): number;
  /** Frame `index` is decoded and cached. */
  ready(index: number): void;
  failed(message: string): void;
}

export class FrameCache {
  private readonly bitmaps: LruCache<number, Bitmap>;
  private readonly requests = new Set<number>();

  constructor(private readonly host: FrameCacheHost, private readonly decode: ImageDecoder = defaultDecoder,
    capacity = 240) {
    this.bitmaps = new LruCache(capacity, (bitmap) => bitmap.close?.());
  }

  /** Ask the kernel for frame `t` unless it is cached, asked for already, or outside the video. */
  request(t: number): void {
    if (t < 0 || t >= this.host.numFrames() || this.bitmaps.has(t) || this.requests.has(t)) return;
    this.requests.add(t);
    this.host.send({ type: "request_frame", index: t });
  }

  has(t: number): boolean {
    return this.bitmaps.has(t);
  }

  get(t: number): Bitmap | undefined {
    return this.bitmaps.get(t);
  }

  /** Decode and cache a frame's JPEG (the bytes are copied: the message's buffer is reused). */
  receive(index: number, jpeg: Uint8Array | undefined): Promise<void> {
    if (jpeg === undefined) throw new Error(`frame ${index} arrived without its JPEG buffer`);
    return this.decode(jpeg.slice()).then((bitmap) => {
      this.requests.delete(index);
      this.bitmaps.set(index, bitmap);
      this.host.ready(index);
    }).catch((error: unknown) => {
      this.requests.delete(index);
      this.host.failed(`could not decode frame ${index}: ${String(error)}`);
    });
  }

  clear(): void {
    this.bitmaps.clear();
    this.requests.clear();
  }
}
