// One-line log format shared by the daemon and vpnctl (CONFIG.md):
//   [2026-11-22T10:00:00Z] INFO  [peer/manager] connected to node2 (1f3a…)
// A Logger is a value passed to whoever logs, never a module-level instance, so tests can run
// several daemons in one process and capture each one's lines.

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const LEVEL_RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogSink = (line: string) => void;

export interface LoggerOptions {
  level?: LogLevel;
  sink?: LogSink;
  clock?: () => Date;
}

export function isLogLevel(value: unknown): value is LogLevel {
  return typeof value === 'string' && (LOG_LEVELS as readonly string[]).includes(value);
}

export function formatLogLine(time: Date, level: LogLevel, component: string, message: string): string {
  // Seconds precision, as in the documented format; milliseconds add noise, not information.
  const stamp = time.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return `[${stamp}] ${level.toUpperCase().padEnd(5)} [${component}] ${singleLine(message)}`;
}

// C0 and C1 controls, DEL, and the Unicode line and paragraph separators: matching them is the point.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/**
 * Text with every control character written as an escape (\n, \u001b…): one line that cannot
 * forge another log line or steer a terminal, whatever a peer or a config file put in it.
 */
export function singleLine(text: string): string {
  return text.replace(CONTROL_CHARS, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}

/** Untrusted text (from the wire) quoted for a message: printable ASCII only, bounded. */
export function printable(text: string, max = 64): string {
  const cleaned = text.replace(/[^\x20-\x7e]/g, '?');
  return JSON.stringify(cleaned.length > max ? `${cleaned.slice(0, max)}...` : cleaned);
}

/** Shortens a 64-hex fingerprint for log lines: enough to tell peers apart, short enough to read. */
export function shortFingerprint(fingerprint: string): string {
  return fingerprint.length > 8 ? `${fingerprint.slice(0, 8)}…` : fingerprint;
}

export class Logger {
  private readonly state: { level: LogLevel };
  private readonly sink: LogSink;
  private readonly clock: () => Date;

  constructor(
    readonly component: string,
    options: LoggerOptions = {},
    sharedState?: { level: LogLevel },
  ) {
    // Children share the level cell with their parent so a reload that changes log_level
    // reaches every component at once.
    this.state = sharedState ?? { level: options.level ?? 'info' };
    this.sink = options.sink ?? ((line) => process.stderr.write(line + '\n'));
    this.clock = options.clock ?? (() => new Date());
  }

  /** A logger for a sub-component, sharing sink, clock and level. */
  child(component: string): Logger {
    return new Logger(component, { sink: this.sink, clock: this.clock }, this.state);
  }

  get level(): LogLevel {
    return this.state.level;
  }

  setLevel(level: LogLevel): void {
    this.state.level = level;
  }

  enabled(level: LogLevel): boolean {
    return LEVEL_RANK[level] >= LEVEL_RANK[this.state.level];
  }

  debug(message: string): void {
    this.write('debug', message);
  }
  info(message: string): void {
    this.write('info', message);
  }
  warn(message: string): void {
    this.write('warn', message);
  }
  error(message: string): void {
    this.write('error', message);
  }

  private write(level: LogLevel, message: string): void {
    if (!this.enabled(level)) return;
    this.sink(formatLogLine(this.clock(), level, this.component, message));
  }
}

/** Unread log bytes a stream may hold before lines are dropped (and counted). */
export const MAX_QUEUED_LOG_BYTES = 4 * 1024 * 1024;

/**
 * A sink onto a stream such as stderr. When the reader (journald, a pipe) is slower than the
 * daemon, Node queues writes inside the process without limit; past `maxQueued` bytes lines are
 * dropped instead, and once the stream drains one line says how many were lost.
 */
export function streamSink(stream: Pick<NodeJS.WriteStream, 'write' | 'writableLength' | 'once'>, maxQueued = MAX_QUEUED_LOG_BYTES): LogSink {
  let dropped = 0;
  let waiting = false;
  return (line) => {
    if (stream.writableLength > maxQueued) {
      dropped++;
      if (!waiting) {
        waiting = true;
        stream.once('drain', () => {
          waiting = false;
          const note = formatLogLine(new Date(), 'warn', 'log', `${dropped} log line(s) dropped: the log reader was too slow`);
          dropped = 0;
          stream.write(note + '\n');
        });
      }
      return;
    }
    stream.write(line + '\n');
  };
}

/** A logger that keeps its lines in memory, for tests that assert on what was logged. */
export function memoryLogger(component = 'test', level: LogLevel = 'debug'): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: new Logger(component, { level, sink: (line) => lines.push(line) }), lines };
}
