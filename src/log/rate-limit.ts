// A budget of log lines per key (e.g. per peer) and minute: what a peer can make us log must not
// be what it sends. Lines past the budget are counted, and the next line for that key says how
// many were left out.

export const LINES_PER_WINDOW = 20;
export const WINDOW_MS = 60_000;

interface Window {
  start: number;
  used: number;
  suppressed: number;
}

export class LogBudget {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly now: () => number,
    private readonly lines = LINES_PER_WINDOW,
    private readonly windowMs = WINDOW_MS,
  ) {}

  /**
   * Whether a line for `key` may be logged now; if so, with a suffix naming the lines left out
   * since the last one (or '').
   */
  take(key: string): { ok: true; note: string } | { ok: false } {
    const now = this.now();
    let window = this.windows.get(key);
    if (!window || now - window.start >= this.windowMs) {
      const suppressed = window?.suppressed ?? 0;
      window = { start: now, used: 0, suppressed };
      this.windows.set(key, window);
    }
    if (window.used >= this.lines) {
      window.suppressed++;
      return { ok: false };
    }
    window.used++;
    const note = window.suppressed > 0 ? ` (${window.suppressed} similar line(s) left out before this one)` : '';
    window.suppressed = 0;
    return { ok: true, note };
  }

  /** Forgets a key (its peer went away), so the map stays as large as the set of live keys. */
  forget(key: string): void {
    this.windows.delete(key);
  }
}
