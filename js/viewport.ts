/**
 * Zoom and pan: the affine map between image pixels (original frame) and canvas CSS pixels,
 * `screen = image * scale + offset`.
 */

export const MIN_ZOOM = 0.25; // relative to the fitted scale
export const MAX_ZOOM = 32;

export class Viewport {
  scale = 1;
  offsetX = 0;
  offsetY = 0;
  private fitted = 1;

  constructor(
    public imageWidth: number, public imageHeight: number,
    public viewWidth: number, public viewHeight: number,
  ) {
    this.fit();
  }

  /** Show the whole frame, centred. */
  fit(): void {
    const w = Math.max(1, this.imageWidth);
    const h = Math.max(1, this.imageHeight);
    this.fitted = Math.min(this.viewWidth / w, this.viewHeight / h) || 1;
    this.scale = this.fitted;
    this.offsetX = (this.viewWidth - w * this.scale) / 2;
    this.offsetY = (this.viewHeight - h * this.scale) / 2;
  }

  /** Zoom relative to the fitted view (1 = fitted). */
  get zoom(): number {
    return this.scale / this.fitted;
  }

  /** Keep the image point under the view centre where it is when the view changes size. */
  resize(viewWidth: number, viewHeight: number): void {
    const wasFitted = Math.abs(this.zoom - 1) < 1e-6;
    const [cx, cy] = this.toImage(this.viewWidth / 2, this.viewHeight / 2);
    const zoom = this.zoom;
    this.viewWidth = viewWidth;
    this.viewHeight = viewHeight;
    this.fit();
    if (wasFitted) return;
    this.scale = this.fitted * zoom;
    this.offsetX = viewWidth / 2 - cx * this.scale;
    this.offsetY = viewHeight / 2 - cy * this.scale;
  }

  toImage(sx: number, sy: number): [number, number] {
    return [(sx - this.offsetX) / this.scale, (sy - this.offsetY) / this.scale];
  }

  toScreen(x: number, y: number): [number, number] {
    return [x * this.scale + this.offsetX, y * this.scale + this.offsetY];
  }

  /** Multiply the zoom by `factor`, keeping the image point under (sx, sy) fixed. */
  zoomAt(sx: number, sy: number, factor: number): void {
    const [ix, iy] = this.toImage(sx, sy);
    const zoom = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, this.zoom * factor));
    this.scale = this.fitted * zoom;
    this.offsetX = sx - ix * this.scale;
    this.offsetY = sy - iy * this.scale;
  }

  panBy(dx: number, dy: number): void {
    this.offsetX += dx;
    this.offsetY += dy;
  }

  /** True when (x, y) in image pixels lies on the frame. */
  contains(x: number, y: number): boolean {
    return x >= 0 && y >= 0 && x <= this.imageWidth && y <= this.imageHeight;
  }
}
