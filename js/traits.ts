/** The synced traits of `manet_widget.Annotator` (keep in step with `manet_widget/widget.py`). */
import type { Direction, MapOverlay } from "./protocol";
import type { OverlayMode } from "./codecs";

export interface ObjectEntry {
  id: number;
  name: string;
  color: string;
}

export interface RoundEntry {
  round: number;
  frame: number;
  objects: number[];
  strokes: number;
  clicks?: number;
  boxes?: number;
  mask?: boolean;
  seconds: number;
}

export type Status = "idle" | "preparing" | "running" | "propagating" | "cancelling" | "exporting" | "saving";

/** The prompt tools (strokes, clicks, boxes) and the mask-painting tools (paint, erase). */
export type Tool = "scribble" | "click" | "box" | "paint" | "erase";
export const TOOLS: readonly Tool[] = ["scribble", "click", "box", "paint", "erase"];

export type AutosaveState = "off" | "ready" | "saving" | "saved" | "error";

export interface Traits {
  num_frames: number;
  height: number;
  width: number;
  objects: ObjectEntry[];
  round_index: number;
  status: Status;
  progress: { done: number; total: number };
  error: string;
  suggested_frame: number;
  annotated_frames: number[];
  round_history: RoundEntry[];
  mask_version: number;
  /** The session has a step (round or object deletion) to undo. */
  can_undo: boolean;
  protocol_version: number;
  frame_index: number;
  active_object: number;
  overlay_opacity: number;
  overlay_mode: OverlayMode;
  map_overlay: MapOverlay;
  brush_radius: number;
  tool: Tool;
  click_radius: number;
  autosave_path: string;
  autosave_state: AutosaveState;
  play_fps: number;
  canvas_height: number;
  /** Propagation range of the next round: frames range_start..range_stop (-1: the video's first / last). */
  range_start: number;
  range_stop: number;
  propagation_direction: Direction;
  [key: string]: unknown;
}
