/**
 * The undo/redo history used by every editor of the front end (prompts and painted masks): a
 * bounded stack of steps and the steps undone since the last new one. What a step holds, and how
 * it is undone and redone, is the owner's business.
 */
export class UndoStack<T> {
  private done: T[] = [];
  private undone: T[] = [];

  /** `limit`: the most steps kept; the oldest is forgotten first. */
  constructor(private readonly limit = 100) {}

  /** Record a new step; it clears the redo side. */
  push(step: T): void {
    this.done.push(step);
    if (this.done.length > this.limit) this.done.shift();
    this.undone = [];
  }

  /** The step to undo (moved to the redo side), or undefined when there is none. */
  undo(): T | undefined {
    const step = this.done.pop();
    if (step !== undefined) this.undone.push(step);
    return step;
  }

  /** The step to redo (moved back to the undo side), or undefined when there is none. */
  redo(): T | undefined {
    const step = this.undone.pop();
    if (step !== undefined) this.done.push(step);
    return step;
  }

  get canUndo(): boolean {
    return this.done.length > 0;
  }

  get canRedo(): boolean {
    return this.undone.length > 0;
  }

  /** Rewrite every recorded step (e.g. to drop a deleted object from them). */
  map(rewrite: (step: T) => T): void {
    this.done = this.done.map(rewrite);
    this.undone = this.undone.map(rewrite);
  }
}
