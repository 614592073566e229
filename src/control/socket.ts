// The daemon side of the local control API (PROTOCOL.md section 7): a Unix socket, mode 0600 (or
// 0660 in daemon.socket_group, whose members may only read: caller.ts),
// speaking one JSON object per line in each direction. Everything a client sends is untrusted
// input: size and time are bounded per connection, and no request can take the daemon down.

import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from '../log/logger.js';
import { mayRun, type CallerUid } from './caller.js';

export interface ControlRequest {
  cmd: string;
  [key: string]: unknown;
}

export type ControlHandler = (request: ControlRequest) => Promise<unknown> | unknown;

/** daemon.socket_group: the socket is 0660 in this group, whose members may only read. */
export interface GroupAccess {
  gid: number;
  callerUid: CallerUid;
  /** The daemon's own uid (root, usually): it may change the daemon too. */
  daemonUid: number;
}

export type RequestLineResult = { ok: true; request: ControlRequest } | { ok: false; error: string };

export const MAX_REQUEST_BYTES = 64 * 1024;
export const REQUEST_DEADLINE_MS = 2000;
/** How long a closing connection may take to read its last error line before it is cut. */
const CLOSE_GRACE_MS = 1000;
/** A client that does not read its answers is cut before the daemon buffers much for it. */
const MAX_UNREAD_RESPONSE_BYTES = 1024 * 1024;
const PROBE_TIMEOUT_MS = 1000;

export class ControlSocketServer {
  private server: net.Server | undefined;
  private readonly connections = new Set<net.Socket>();
  /** Inode of the socket file we created, so close() never unlinks a successor's socket. */
  private socketInode: number | undefined;

  constructor(
    readonly path: string,
    private readonly handler: ControlHandler,
    private readonly logger: Logger,
    private readonly group: GroupAccess | null = null,
  ) {}

  async start(): Promise<void> {
    await this.removeStaleSocket();
    const directory = path.dirname(this.path);
    await fs.mkdir(directory, { recursive: true, mode: 0o755 });

    // Listen on a private name, restrict it, then rename it into place: the socket is never
    // reachable at its public path with looser permissions. (process.umask would do the same but
    // is process-wide state shared with everything else in the process.)
    const temporary = path.join(directory, `.${path.basename(this.path)}.${randomBytes(6).toString('hex')}.tmp`);
    const server = net.createServer((socket) => this.serve(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) =>
        reject(new Error(`control socket ${this.path}: cannot listen: ${error.message}`)),
      );
      server.listen(temporary, () => resolve());
    });
    try {
      if (this.group) {
        await fs.chown(temporary, process.getuid?.() ?? 0, this.group.gid);
        await fs.chmod(temporary, 0o660);
      } else {
        await fs.chmod(temporary, 0o600);
      }
      await fs.rename(temporary, this.path);
      this.socketInode = (await fs.stat(this.path)).ino;
    } catch (error) {
      server.close();
      await fs.rm(temporary, { force: true });
      throw new Error(`control socket ${this.path}: cannot install socket: ${(error as Error).message}`);
    }
    server.on('error', (error) => this.logger.warn(`control socket ${this.path}: ${error.message}`));
    this.server = server;
    this.logger.info(`control socket listening on ${this.path}`);
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const socket of this.connections) socket.destroy();
    this.connections.clear();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    try {
      if ((await fs.stat(this.path)).ino === this.socketInode) await fs.unlink(this.path);
    } catch {
      // Already gone: nothing to clean up.
    }
  }

  /** A socket file left by a crashed daemon is removed; one a live daemon answers on is not. */
  private async removeStaleSocket(): Promise<void> {
    let stats;
    try {
      stats = await fs.lstat(this.path);
    } catch {
      return;
    }
    if (!stats.isSocket()) {
      throw new Error(
        `control socket ${this.path} exists and is not a socket; remove it or set daemon.control_socket to another path`,
      );
    }
    if (await isAnswering(this.path)) {
      throw new Error(
        `control socket ${this.path} is in use by another vibepn daemon (stop it, or set daemon.control_socket to another path)`,
      );
    }
    await fs.unlink(this.path);
    this.logger.info(`removed stale control socket ${this.path}`);
  }

  private serve(socket: net.Socket): void {
    this.connections.add(socket);
    const group = this.group;
    let handler = this.handler;
    if (group) {
      const uid = group.callerUid(socket);
      handler = (request) => {
        if (!mayRun(request.cmd, uid, group.daemonUid, true)) {
          throw new Error(`'${request.cmd}' changes the daemon: run it as root (sudo vpnctl ${request.cmd}); members of daemon.socket_group may only read`);
        }
        return this.handler(request);
      };
    }
    const connection = new Connection(socket, handler, this.logger);
    socket.on('close', () => this.connections.delete(socket));
    connection.begin();
  }
}

/** Whether something accepts connections on a Unix socket path. */
function isAnswering(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(socketPath);
    const finish = (answering: boolean): void => {
      probe.destroy();
      resolve(answering);
    };
    probe.setTimeout(PROBE_TIMEOUT_MS, () => finish(false));
    probe.once('connect', () => finish(true));
    probe.once('error', () => finish(false));
  });
}

/** One client connection: splits lines, answers them in order, enforces the limits. */
class Connection {
  private readonly lines = new RequestLineSplitter();
  private readonly queue: Buffer[] = [];
  private busy = false;
  private closing = false;
  private deadline: NodeJS.Timeout | undefined;

  constructor(
    private readonly socket: net.Socket,
    private readonly handler: ControlHandler,
    private readonly logger: Logger,
  ) {}

  begin(): void {
    this.socket.on('data', (chunk: Buffer) => this.receive(chunk));
    this.socket.on('error', (error) => this.logger.debug(`control client error: ${error.message}`));
    this.socket.on('close', () => this.clearDeadline());
    this.armDeadline();
  }

  private receive(chunk: Buffer): void {
    if (this.closing) return;
    if (!this.lines.push(chunk, this.queue)) return this.rejectTooLong();
    void this.drain();
  }

  /** Answers queued lines one at a time, so responses come back in request order. */
  private async drain(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    // Reading stops while requests wait: a client pipelining thousands of lines is held back by
    // the socket, not buffered by the daemon.
    this.socket.pause();
    while (!this.closing) {
      const line = this.queue.shift();
      if (line === undefined) break;
      const response = await this.answer(line);
      if (this.closing || this.socket.destroyed) break;
      this.socket.write(response + '\n');
      if (this.socket.writableLength > MAX_UNREAD_RESPONSE_BYTES) {
        this.logger.debug('control client does not read its responses; closing');
        this.socket.destroy();
        this.closing = true;
      }
    }
    this.busy = false;
    if (!this.closing) this.socket.resume();
  }

  private async answer(line: Buffer): Promise<string> {
    const parsed = parseRequestLine(line);
    if (!parsed.ok) return errorLine(parsed.error);
    // A well-formed request: the client is talking sense, so it gets a fresh deadline once
    // this one has been answered.
    this.clearDeadline();
    let output: unknown;
    try {
      output = await this.handler(parsed.request);
    } catch (error) {
      this.armDeadline();
      return errorLine(error instanceof Error ? error.message : String(error));
    }
    this.armDeadline();
    try {
      return JSON.stringify({ status: 'ok', output: output ?? null });
    } catch (error) {
      return errorLine(`daemon could not encode the response: ${(error as Error).message}`);
    }
  }

  private armDeadline(): void {
    this.clearDeadline();
    if (this.closing) return;
    this.deadline = setTimeout(
      () => this.closeWithError(`timeout: send one JSON request per line within ${REQUEST_DEADLINE_MS / 1000}s`),
      REQUEST_DEADLINE_MS,
    );
  }

  private clearDeadline(): void {
    if (this.deadline) clearTimeout(this.deadline);
    this.deadline = undefined;
  }

  private rejectTooLong(): void {
    this.closeWithError(`request too long: more than ${MAX_REQUEST_BYTES} bytes without a newline`);
  }

  private closeWithError(message: string): void {
    if (this.closing) return;
    this.closing = true;
    this.clearDeadline();
    this.lines.clear();
    this.queue.length = 0;
    // Keep consuming (and discarding) input so the client is not stuck writing, and give it a
    // moment to read the error before the connection is cut.
    this.socket.resume();
    this.socket.end(errorLine(message) + '\n');
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
  }
}

/**
 * Splits a connection's bytes into request lines (without their `\n`), holding at most
 * `maxLineBytes` of an unfinished line between chunks.
 */
export class RequestLineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly maxLineBytes = MAX_REQUEST_BYTES) {}

  /** Bytes of an unfinished line held between pushes. */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  /**
   * Appends each line that `chunk` completes to `lines`, in order. Returns false as soon as a
   * line is longer than the limit: the connection must then be closed (lines appended before
   * that stay appended).
   */
  push(chunk: Buffer, lines: Buffer[]): boolean {
    let start = 0;
    for (let newline = chunk.indexOf(0x0a); newline !== -1; newline = chunk.indexOf(0x0a, start)) {
      const piece = chunk.subarray(start, newline);
      start = newline + 1;
      if (this.pendingBytes + piece.length > this.maxLineBytes) return false;
      lines.push(Buffer.concat([...this.pending, piece]));
      this.pending = [];
      this.pendingBytes = 0;
    }
    const rest = chunk.subarray(start);
    if (this.pendingBytes + rest.length > this.maxLineBytes) return false;
    if (rest.length > 0) {
      this.pending.push(rest);
      this.pendingBytes += rest.length;
    }
    return true;
  }

  /** Drops the unfinished line. */
  clear(): void {
    this.pending = [];
    this.pendingBytes = 0;
  }
}

/** Reads one request line (without its `\n`; a trailing `\r` is ignored). Never throws. */
export function parseRequestLine(line: Buffer): RequestLineResult {
  const text = line.toString('utf8').replace(/\r$/, '');
  if (text.trim() === '') return { ok: false, error: 'empty request: send one JSON object per line, e.g. {"cmd":"status"}' };
  let request: unknown;
  try {
    request = JSON.parse(text);
  } catch (error) {
    return { ok: false, error: `malformed JSON request: ${(error as Error).message}` };
  }
  if (typeof request !== 'object' || request === null || Array.isArray(request)) {
    return { ok: false, error: 'request must be a JSON object, e.g. {"cmd":"status"}' };
  }
  if (typeof (request as { cmd?: unknown }).cmd !== 'string') {
    return { ok: false, error: 'request needs a string "cmd" field, e.g. {"cmd":"status"}' };
  }
  return { ok: true, request: request as ControlRequest };
}

function errorLine(message: string): string {
  return JSON.stringify({ status: 'error', error: message });
}
