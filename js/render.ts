/** Drawing of the main canvas: frame, mask overlay, heat map, prompts and the tool cursor. */
import type { BoxPrompt, Stroke } from "./protocol";
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
  boxes: readonly BoxPrompt[];
  boxDraft: BoxPrompt | null;
  colorOf(objectId: number): string;
  /** A circle of `radius` image pixels (brush, click) or a crosshair (box). */
  cursor: { x: number; y: number; radius: number; color: string; shape: "circle" | "cross" } | null;
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
  drawStrokes(ctx, scene.strokes.filter((s) => s.kind !== "click"), scene.colorOf, view.scale);
  drawBoxes(ctx, scene.boxDraft === null ? scene.boxes : [...scene.boxes, scene.boxDraft], scene.colorOf, view.scale);
  drawClicks(ctx, scene.strokes.filter((s) => s.kind === "click"), scene.colorOf, view.scale);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  if (scene.cursor !== null && scene.cursor.shape === "cross") {
    drawCrosshair(ctx, ...view.toScreen(scene.cursor.x, scene.cursor.y), scene.cursor.color);
  } else if (scene.cursor !== null) {
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

/** Boxes as rectangles in their object's colour over a dark outline (image coordinates). */
export function drawBoxes(
  ctx: CanvasRenderingContext2D, boxes: readonly BoxPrompt[], colorOf: (id: number) => string, scale: number,
): void {
  for (const pass of ["outline", "colour"] as const) {
    for (const b of boxes) {
      ctx.strokeStyle = pass === "outline" ? "rgba(0,0,0,0.6)" : colorOf(b.objectId);
      ctx.lineWidth = (pass === "outline" ? 4 : 2) / scale;
      ctx.strokeRect(b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0);
    }
  }
}

/**
 * Clicks as dots of their radius (at least 4 screen px), in the object's colour with a dark
 * ring; a plus marks a positive click, a minus a background (negative) one.
 */
export function drawClicks(
  ctx: CanvasRenderingContext2D, clicks: readonly Stroke[], colorOf: (id: number) => string, scale: number,
): void {
  for (const click of clicks) {
    const [x, y] = [click.points[0]!, click.points[1]!];
    const r = Math.max(click.radius, 4 / scale);
    ctx.beginPath();
    ctx.arc(x, y, r, 0, 2 * Math.PI);
    ctx.fillStyle = colorOf(click.objectId);
    ctx.fill();
    ctx.lineWidth = 1.5 / scale;
    ctx.strokeStyle = "rgba(0,0,0,0.8)";
    ctx.stroke();
    const arm = r * 0.55;
    ctx.strokeStyle = "#ffffff";
    ctx.lineWidth = Math.max(1 / scale, r * 0.25);
    ctx.beginPath();
    ctx.moveTo(x - arm, y);
    ctx.lineTo(x + arm, y);
    if (click.objectId !== 0) {
      ctx.moveTo(x, y - arm);
      ctx.lineTo(x, y + arm);
    }
    ctx.stroke();
  }
}

function drawCrosshair(ctx: CanvasRenderingContext2D, x: number, y: number, color: string): void {
  for (const [style, width] of [["rgba(0,0,0,0.7)", 3], [color, 1.5]] as const) {
    ctx.strokeStyle = style;
    ctx.lineWidth = width;
    ctx.beginPath();
    ctx.moveTo(x - 9, y);
    ctx.lineTo(x + 9, y);
    ctx.moveTo(x, y - 9);
    ctx.lineTo(x, y + 9);
    ctx.stroke();
  }
}
