import { describe, expect, it } from "vitest";
import committed from "../../manet_widget/protocol/schema.json";
import { parseIncoming, PROTOCOL_VERSION } from "../protocol";
import { messageSchema, REQUEST_SCHEMAS, validate } from "../schema";
import { render } from "../widget";
import { FakeModel } from "./harness";
import type { AnyModel } from "@anywidget/types";
import type { Traits } from "../traits";

describe("message schema", () => {
  it("equals the schema the Python types generate (manet_widget/protocol/schema.json)", () => {
    // Fails when js/protocol.ts (through js/schema.ts) or the Python types change alone.
    expect(messageSchema(PROTOCOL_VERSION)).toEqual(committed);
  });

  it("validates what the front end sends and refuses what it must not", () => {
    expect(validate(REQUEST_SCHEMAS.run, {
      type: "run", frame: 2, strokes: [{ object_id: 1, radius: null, count: 1, kind: "click" }],
      header: { dtype: "float32", shape: [1, 2], encoding: "raw" }, propagation: { start: 0, stop: 5, direction: "forward" },
    })).toBe(true);
    expect(validate(REQUEST_SCHEMAS.run, { type: "run", frame: 2, strokes: [], header: { dtype: "float32", shape: [0, 2],
      encoding: "raw" }, propagation: { start: 0, stop: 5, direction: "sideways" } })).toBe(false);
    expect(validate(REQUEST_SCHEMAS.undo, { type: "undo" })).toBe(true);
    expect(validate(REQUEST_SCHEMAS.undo, { type: "undo_round" })).toBe(false);
  });

  it("parses only replies that match the schema", () => {
    expect(parseIncoming({ type: "round_started", round: 1, frame: 3, start: 0, stop: 9 })).not.toBeNull();
    expect(parseIncoming({ type: "round_started", round: 1, frame: 3 })).toBeNull(); // protocol 2's shape
    expect(parseIncoming({ type: "mask", index: 1.5, version: 0, pending: false,
      header: { dtype: "uint8", shape: [2, 2], encoding: "empty" } })).toBeNull();
    expect(parseIncoming({ type: "error", message: "x", extra: 1 })).toBeNull();
  });
});

describe("protocol version", () => {
  it("refuses a kernel of another protocol version with a banner that says how to fix it", () => {
    const model = new FakeModel({ protocol_version: PROTOCOL_VERSION - 1 });
    const el = document.createElement("div");
    const dispose = render({ model: model as unknown as AnyModel<Traits>, el } as never);
    const text = el.textContent ?? "";
    expect(text).toContain(`speaks protocol ${PROTOCOL_VERSION}`);
    expect(text).toContain(`protocol ${PROTOCOL_VERSION - 1}`);
    expect(text).toContain("bash scripts/setup.sh");
    expect(text).toContain("pip install --force-reinstall manet-jupyter");
    expect(el.querySelector("canvas")).toBeNull();
    expect(model.sent).toEqual([]); // not even a frame request
    dispose();
  });

  it("builds the annotator when the versions agree", () => {
    const model = new FakeModel();
    const el = document.createElement("div");
    const dispose = render({ model: model as unknown as AnyModel<Traits>, el } as never);
    expect(el.querySelector("canvas")).not.toBeNull();
    expect(model.ofType("request_frame")).toHaveLength(1);
    dispose();
  });
});
