/**
 * The JSON schema of every wire message, built from descriptions typed against the message
 * interfaces of `protocol.ts`: a field added to or removed from an interface without its
 * description here fails `tsc`, and the built schema must equal the one the Python types generate
 * (`manet_widget/protocol/schema.json`, compared in `js/tests/protocol.test.ts`). `parseIncoming`
 * validates kernel messages with {@link validate} against {@link REPLY_SCHEMAS}.
 */
import type {
  AddObject, ApplyMaskMessage, ArrayHeader, BoxMeta, CancelMessage, DeleteObject, ErrorMessage, Exported,
  ExportMessage, FrameMessage, IncomingMessage, MapMessage, MaskMessage, NoArray, OutgoingMessage,
  PropagationRange, RenameObject, RequestFrame, RequestMap, RequestMask, ResetMessage, RoundCancelled,
  RoundFinished, RoundStarted, RunMessage, StrokeMeta, UndoMessage,
} from "./protocol";

export type JsonSchema = { [key: string]: unknown };

/** One schema per field of `T` (every field, optional ones included) - checked by the compiler. */
type Described<T> = { [K in keyof T]-?: JsonSchema };
/** The keys of `T` that may be left out. */
type OptionalKey<T> = { [K in keyof T]-?: object extends Pick<T, K> ? K : never }[keyof T];

const integer: JsonSchema = { type: "integer" };
const number: JsonSchema = { type: "number" };
const string: JsonSchema = { type: "string" };
const boolean: JsonSchema = { type: "boolean" };
const enumOf = (...values: readonly string[]): JsonSchema => (values.length === 1 ? { const: values[0] } : { enum: [...values] });
const arrayOf = (items: JsonSchema): JsonSchema => ({ type: "array", items });
const anyOf = (...options: JsonSchema[]): JsonSchema => ({ anyOf: options });
const ref = (name: keyof typeof DEFINITIONS): JsonSchema => ({ $ref: `#/$defs/${name}` });

function object<T>(fields: Described<T>, optional: readonly OptionalKey<T>[] = []): JsonSchema {
  const properties = fields as Record<string, JsonSchema>;
  const required = Object.keys(properties).filter((key) => !(optional as readonly string[]).includes(key)).sort();
  return { type: "object", properties, required, additionalProperties: false };
}

function message<T extends { type: string }>(type: T["type"], fields: Described<Omit<T, "type">>,
  optional: readonly OptionalKey<T>[] = []): JsonSchema {
  return object<T>({ type: enumOf(type), ...fields } as Described<T>, optional);
}

const DEFINITIONS = {
  ArrayHeader: object<ArrayHeader>({ dtype: string, shape: arrayOf(integer), encoding: enumOf("raw", "jpeg", "zlib", "empty") }),
  BoxMeta: object<BoxMeta>({ object_id: integer, x0: number, y0: number, x1: number, y1: number }),
  NoArray: object<NoArray>({ encoding: enumOf("none") }),
  PropagationRange: object<PropagationRange>({ start: integer, stop: integer, direction: enumOf("both", "forward", "backward") }),
  StrokeMeta: object<StrokeMeta>({
    object_id: integer, radius: anyOf(number, { type: "null" }), count: integer, kind: enumOf("stroke", "click"),
  }, ["kind"]),
};

const MAP_KIND = enumOf("global", "local", "augmented");
const EXPORT_FORMAT = enumOf("png", "npz", "coco", "video");

export const REQUEST_SCHEMAS: Record<OutgoingMessage["type"], JsonSchema> = {
  add_object: message<AddObject>("add_object", { name: string }, ["name"]),
  apply_mask: message<ApplyMaskMessage>("apply_mask", {
    frame: integer, header: ref("ArrayHeader"), propagation: ref("PropagationRange"),
  }, ["propagation"]),
  cancel: message<CancelMessage>("cancel", {}),
  delete_object: message<DeleteObject>("delete_object", { object_id: integer }),
  export: message<ExportMessage>("export", { format: EXPORT_FORMAT, path: string }),
  rename_object: message<RenameObject>("rename_object", { object_id: integer, name: string }),
  request_frame: message<RequestFrame>("request_frame", { index: integer }),
  request_map: message<RequestMap>("request_map", { index: integer, object_id: integer, kind: MAP_KIND }),
  request_mask: message<RequestMask>("request_mask", { index: integer }),
  reset: message<ResetMessage>("reset", {}),
  run: message<RunMessage>("run", {
    frame: integer, strokes: arrayOf(ref("StrokeMeta")), header: ref("ArrayHeader"), boxes: arrayOf(ref("BoxMeta")),
    propagation: ref("PropagationRange"),
  }, ["boxes", "propagation"]),
  undo: message<UndoMessage>("undo", {}),
};

export const REPLY_SCHEMAS: Record<IncomingMessage["type"], JsonSchema> = {
  error: message<ErrorMessage>("error", { message: string }),
  exported: message<Exported>("exported", { format: EXPORT_FORMAT, path: string }),
  frame: message<FrameMessage>("frame", { index: integer, header: ref("ArrayHeader") }),
  map: message<MapMessage>("map", {
    index: integer, object_id: integer, kind: MAP_KIND, version: integer,
    header: anyOf(ref("ArrayHeader"), ref("NoArray")), reason: string,
  }, ["reason"]),
  mask: message<MaskMessage>("mask", { index: integer, version: integer, pending: boolean, header: ref("ArrayHeader") }),
  round_cancelled: message<RoundCancelled>("round_cancelled", { round: integer }),
  round_finished: message<RoundFinished>("round_finished", { round: integer, version: integer }),
  round_started: message<RoundStarted>("round_started", { round: integer, frame: integer, start: integer, stop: integer }),
};

/** The whole schema document, laid out as `manet_widget/protocol/schema.json`. */
export function messageSchema(version: number): JsonSchema {
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: "manet_widget wire protocol",
    protocol_version: version,
    $defs: DEFINITIONS,
    requests: REQUEST_SCHEMAS,
    replies: REPLY_SCHEMAS,
  };
}

/** True when `value` satisfies `schema` (the subset of JSON Schema this protocol uses). */
export function validate(schema: JsonSchema, value: unknown): boolean {
  if (typeof schema.$ref === "string") {
    const target = DEFINITIONS[schema.$ref.replace("#/$defs/", "") as keyof typeof DEFINITIONS];
    return target !== undefined && validate(target, value);
  }
  if ("const" in schema && value !== schema.const) return false;
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) return false;
  if (Array.isArray(schema.anyOf)) return (schema.anyOf as JsonSchema[]).some((option) => validate(option, value));
  switch (schema.type) {
    case "integer": return Number.isInteger(value);
    case "number": return typeof value === "number" && Number.isFinite(value);
    case "string": return typeof value === "string";
    case "boolean": return typeof value === "boolean";
    case "null": return value === null;
    case "array":
      return Array.isArray(value) && value.every((item) => validate(schema.items as JsonSchema, item));
    case "object": return validateObject(schema, value);
    default: return true;
  }
}

function validateObject(schema: JsonSchema, value: unknown): boolean {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const record = value as Record<string, unknown>;
  const properties = schema.properties as Record<string, JsonSchema>;
  if ((schema.required as string[]).some((key) => !(key in record))) return false;
  return Object.entries(record).every(([key, item]) =>
    Object.hasOwn(properties, key) ? validate(properties[key]!, item) : schema.additionalProperties !== false);
}
