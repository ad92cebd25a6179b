/** Drawing of the main canvas: frame, mask overlay, heat map, strokes and the brush cursor. */
import type { Stroke } from "./protocol";
import type { Viewport } from "./viewport";

export interface Layer {
  source: CanvasImageSource;
  width: number;
  height: number;
}

export interface Scene {
  frame: CanvasImageSource | null;
  heat: Layer | null;
  heatAlpha: number;
  overlay: Layer | null;
  strokes: readonly Stroke[];
  colorOf(objectId: number): string;
  cursor: { x: number; y: number; radius: number; color: string } | null;
  background: string;
  message: string;
}

/** Draw a scene onto a canvas of `cssWidth` x `cssHeight` CSS pixels at device ratio `dpr`. */
export function drawScene(
  ctx: CanvasRenderingContext2D, view: Viewport, dpr: number, cssWidth: number, cssHeight: number, scene: Scene,
): void {
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.globalAlpha = 1;
  ctx.fillStyle = scene.background;
  ctx.fillRect(0, 0, cssWidth, cssHeight);
  const s = view.scale * dpr;
  ctx.setTransform(s, 0, 0, s, view.offsetX * dpr, view.offsetY * dpr);
  const w = view.imageWidth;
  const h = view.imageHeight;
  if (scene.frame !== null) {
    ctx.imageSmoothingEnabled = view.scale < 2;
    ctx.drawImage(scene.frame, 0, 0, w, h);
  } else {
    ctx.fillStyle = "rgba(128,128,128,0.25)";
    ctx.fillRect(0, 0, w, h);
  }
  if (scene.heat !== null) {
    ctx.imageSmoothingEnabled = true;
    ctx.globalAlpha = scene.heatAlpha;
    ctx.drawImage(scene.heat.source, 0, 0, w, h);
    ctx.globalAlpha = 1;
  }
  if (scene.overlay !== null) {
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(scene.overlay.source, 0, 0, w, h);
  }
  drawStrokes(ctx, scene.strokes, scene.colorOf, view.scale);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  if (scene.cursor !== null) {
    const [cx, cy] = view.toScreen(scene.cursor.x, scene.cursor.y);
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = "rgba(0,0,0,0.7)";
    ctx.beginPath();
    ctx.arc(cx, cy, Math.max(1, scene.cursor.radius * view.scale) + 1, 0, 2 * Math.PI);
    ctx.stroke();
    ctx.strokeStyle = scene.cursor.color;
    ctx.beginPath();
    ctx.arc(cx, cy, Math.max(1, scene.cursor.radius * view.scale), 0, 2 * Math.PI);
    ctx.stroke();
  }
  if (scene.message) {
    ctx.font = "12px sans-serif";
    const width = ctx.measureText(scene.message).width + 12;
    ctx.fillStyle = "rgba(0,0,0,0.6)";
    ctx.fillRect(8, 8, width, 20);
    ctx.fillStyle = "#fff";
    ctx.fillText(scene.message, 14, 22);
  }
}

/** Strokes in image coordinates (the context already maps image -> canvas), outlined for contrast. */
export function drawStrokes(
  ctx: CanvasRenderingContext2D, strokes: readonly Stroke[], colorOf: (id: number) => string, scale: number,
): void {
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  for (const pass of ["outline", "colour"] as const) {
    for (const stroke of strokes) {
      const p = stroke.points;
      if (p.length < 2) continue;
      const outline = pass === "outline";
      const width = Math.max(2 * stroke.radius, 1.5 / scale) + (outline ? 2 / scale : 0);
      ctx.strokeStyle = outline ? "rgba(0,0,0,0.55)" : colorOf(stroke.objectId);
      ctx.fillStyle = ctx.strokeStyle;
      ctx.globalAlpha = outline ? 1 : 0.9;
      if (p.length === 2) {
        ctx.beginPath();
        ctx.arc(p[0]!, p[1]!, width / 2, 0, 2 * Math.PI);
        ctx.fill();
        continue;
      }
      ctx.lineWidth = width;
      ctx.beginPath();
      ctx.moveTo(p[0]!, p[1]!);
      for (let i = 2; i < p.length; i += 2) ctx.lineTo(p[i]!, p[i + 1]!);
      ctx.stroke();
    }
  }
  ctx.globalAlpha = 1;
}
