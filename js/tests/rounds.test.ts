import { describe, expect, it } from "vitest";
import { zlibSync } from "fflate";
import { Layers } from "../layers";
import { handleMessage, type MessageTarget } from "../messages";
import type { ApplyMaskMessage, RunMessage } from "../protocol";
import { RoundClient, type RoundSource } from "../rounds";
import type { Status } from "../traits";

/** A message target around a real round client, recording what the view would be asked to do. */
function harness(frame = 0) {
  const log = {
    sent: [] as (RunMessage | ApplyMaskMessage)[], committed: [] as [number, RoundSource][], flashes: [] as string[],
    changes: 0, invalidations: 0, errors: [] as string[], frames: [] as number[],
  };
  let status: Status = "idle";
  const rounds = new RoundClient({
    send: (message) => log.sent.push(message),
    status: () => status,
    flash: (message) => log.flashes.push(message),
    committed: (f, source) => log.committed.push([f, source]),
    changed: () => { log.changes += 1; },
  });
  const target: MessageTarget = {
    rounds, layers: new Layers(),
    receiveFrame: (index) => log.frames.push(index),
    currentFrame: () => frame,
    size: () => ({ width: 4, height: 2 }),
    invalidate: () => { log.invalidations += 1; },
    timelineSoon: () => undefined,
    flash: (message) => log.flashes.push(message),
    showLocalError: (message) => log.errors.push(message),
  };
  const receive = (content: unknown, buffers: Uint8Array[] = []): void =>
    handleMessage(target, content, buffers.map((b) => new DataView(b.buffer, b.byteOffset, b.byteLength)));
  return { rounds, log, receive, setStatus: (s: Status) => { status = s; } };
}

const RUN: RunMessage = { type: "run", frame: 0, strokes: [], header: { dtype: "float32", shape: [0, 2], encoding: "raw" } };
const header = { dtype: "uint8", shape: [2, 4], encoding: "zlib" };
const ids = Uint8Array.from([0, 1, 1, 0, 2, 2, 0, 0]);

describe("RoundClient driven by kernel messages", () => {
  it("sends one round until the kernel answers, streams its masks and commits them", () => {
    const { rounds, log, receive, setStatus } = harness();
    expect(rounds.send(RUN, [], "prompts")).toBe(true);
    expect(rounds.busy).toBe(true);
    expect(rounds.send(RUN, [], "prompts")).toBe(false); // no double send before round_started
    expect(log.sent).toHaveLength(1);
    expect(log.flashes).toEqual(["a round is running: wait or cancel it"]);
    receive({ type: "round_started", round: 1, frame: 0, start: 0, stop: 5 });
    setStatus("propagating");
    expect(rounds.range).toEqual({ start: 0, stop: 5 });
    receive({ type: "mask", index: 0, version: 0, pending: true, header }, [zlibSync(ids)]);
    receive({ type: "mask", index: 1, version: 0, pending: true, header: { ...header, encoding: "empty" } });
    expect(rounds.stats.pendingMaskTimes).toHaveLength(2);
    expect(rounds.masks.get(0, false)).toEqual(ids);
    expect(log.invalidations).toBe(1); // only the frame on screen redraws
    receive({ type: "round_finished", round: 1, version: 1 });
    setStatus("idle");
    expect(log.committed).toEqual([[0, "prompts"]]);
    expect(rounds.busy).toBe(false);
    expect(rounds.range).toBeNull();
    expect(rounds.masks.version).toBe(1);
    expect(rounds.masks.get(1, true)).toBeNull();
    expect(rounds.masks.get(0, true)).toEqual(ids);
    expect(rounds.stats.roundFinishedAt).toBeGreaterThan(0);
  });

  it("drops a cancelled round's masks and forgets nothing the user drew", () => {
    const { rounds, log, receive } = harness();
    rounds.send(RUN, [], "mask");
    receive({ type: "round_started", round: 2, frame: 3, start: 3, stop: 9 });
    receive({ type: "mask", index: 3, version: 4, pending: true, header }, [zlibSync(ids)]);
    receive({ type: "round_cancelled", round: 2 });
    expect(rounds.masks.running).toBe(false);
    expect(rounds.masks.hasPending(3)).toBe(false);
    expect(log.committed).toEqual([]);
    expect(rounds.range).toBeNull();
  });

  it("stops waiting when the kernel refuses a round, and ignores stale or malformed messages", () => {
    const { rounds, receive, log } = harness();
    rounds.send(RUN, [], "prompts");
    receive({ type: "error", message: "ScribbleError: outside the frame" });
    expect(rounds.busy).toBe(false);
    expect(rounds.stats.lastError).toBe("ScribbleError: outside the frame");
    receive({ type: "mask", index: 0, version: 0, pending: true, header }, [zlibSync(ids)]);
    expect(rounds.stats.pendingMaskTimes).toEqual([]); // no round runs: not accepted
    receive({ type: "round_started", round: 1, frame: 0 }); // lacks the range: malformed
    expect(rounds.masks.running).toBe(false);
    expect(rounds.stats.lastError).toContain("malformed message");
    receive({ type: "mask", index: 0, version: 0, pending: false, header: { dtype: "uint8", shape: [2, 4], encoding: "zlib" } });
    expect(log.errors[0]).toContain("without its buffer"); // reported, not thrown
    expect(log.errors).toHaveLength(1);
  });

  it("takes the latency from the first draw that shows the round's own mask", () => {
    const { rounds, receive } = harness();
    rounds.send(RUN, [], "prompts");
    receive({ type: "round_started", round: 1, frame: 0, start: 0, stop: 1 });
    rounds.drawn(0, 2);
    expect(rounds.stats.interactiveDrawnAt).toBe(0);
    receive({ type: "mask", index: 0, version: 0, pending: true, header }, [zlibSync(ids)]);
    rounds.drawn(0, 3);
    expect(rounds.stats.interactiveDrawnAt).toBeGreaterThan(0);
    expect(rounds.stats.draws).toBe(2);
    expect(rounds.stats.drawMs).toEqual([2, 3]);
  });

  it("counts the first draw after the round's mask arrived, even when the round finished before it", () => {
    const { rounds, receive } = harness();
    rounds.send(RUN, [], "prompts");
    receive({ type: "round_started", round: 1, frame: 0, start: 0, stop: 1 });
    receive({ type: "mask", index: 0, version: 0, pending: true, header }, [zlibSync(ids)]);
    receive({ type: "round_finished", round: 1, version: 1 });
    rounds.drawn(1, 1); // another frame: not the latency
    expect(rounds.stats.interactiveDrawnAt).toBe(0);
    rounds.drawn(0, 1);
    const first = rounds.stats.interactiveDrawnAt;
    expect(first).toBeGreaterThanOrEqual(rounds.stats.runSentAt);
    rounds.drawn(0, 1);
    expect(rounds.stats.interactiveDrawnAt).toBe(first); // later draws do not move it
  });
});
