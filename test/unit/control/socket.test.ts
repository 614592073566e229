import { describe, it, expect, afterEach } from 'vitest';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ControlSocketServer, type ControlRequest } from '../../../src/control/socket.js';
import { controlRequest, ControlRequestError } from '../../../src/control/client.js';
import { memoryLogger } from '../../../src/log/logger.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function handler(request: ControlRequest): Promise<unknown> {
  switch (request.cmd) {
    case 'status':
      return { uptime_s: 1 };
    case 'echo':
      return request;
    case 'slow':
      await sleep(Number(request.ms));
      return request.n;
    case 'fail':
      throw new Error('reload failed: networks.corp.prefix is not a valid CIDR');
    case 'bigint':
      return 1n;
    case 'nothing':
      return undefined;
    default:
      throw new Error(`unknown command "${request.cmd}": use status, peers, routes, reload or goodbye`);
  }
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempDir(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'vibepn-ctl-'));
  cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

async function startServer(socketPath?: string): Promise<{ server: ControlSocketServer; socketPath: string; lines: string[] }> {
  const where = socketPath ?? path.join(await tempDir(), 'vibepn.sock');
  const { logger, lines } = memoryLogger();
  const server = new ControlSocketServer(where, handler, logger);
  await server.start();
  cleanups.push(() => server.close());
  return { server, socketPath: where, lines };
}

interface Exchange {
  lines: string[];
  closedByServer: boolean;
}

/**
 * Sends raw bytes and collects response lines until the server closes the connection, or until
 * `expectLines` lines arrived (then the client hangs up itself).
 */
function exchange(socketPath: string, data: string | Buffer, expectLines = Infinity): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = net.connect(socketPath);
    let text = '';
    let done = false;
    const finish = (closedByServer: boolean): void => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve({ lines: text.split('\n').filter((line) => line !== ''), closedByServer });
    };
    // The server may hang up while we are still writing (oversized input): that is expected.
    socket.on('error', () => finish(true));
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      if (text.split('\n').length - 1 >= expectLines) finish(false);
    });
    socket.on('close', () => finish(true));
    socket.write(data);
  });
}

async function expectStillAnswers(socketPath: string): Promise<void> {
  expect(await controlRequest(socketPath, { cmd: 'status' })).toEqual({ uptime_s: 1 });
}

describe('ControlSocketServer', () => {
  it('creates the socket with mode 0600, creating the parent directory', async () => {
    const socketPath = path.join(await tempDir(), 'run', 'vibepn', 'vibepn.sock');
    await startServer(socketPath);
    const stats = await fs.stat(socketPath);
    expect(stats.isSocket()).toBe(true);
    expect(stats.mode & 0o777).toBe(0o600);
    // No temporary socket left behind next to it.
    expect(await fs.readdir(path.dirname(socketPath))).toEqual(['vibepn.sock']);
  });

  it('answers a request with ok and the handler output, passing extra fields', async () => {
    const { socketPath } = await startServer();
    expect(await controlRequest(socketPath, { cmd: 'echo', network: 'corp' })).toEqual({ cmd: 'echo', network: 'corp' });
    const raw = await exchange(socketPath, '{"cmd":"status"}\n', 1);
    expect(raw.lines).toEqual(['{"status":"ok","output":{"uptime_s":1}}']);
    expect((await exchange(socketPath, '{"cmd":"nothing"}\n', 1)).lines).toEqual(['{"status":"ok","output":null}']);
  });

  it('answers several requests on one connection in order', async () => {
    const { socketPath } = await startServer();
    const requests = [
      { cmd: 'slow', ms: 50, n: 1 },
      { cmd: 'slow', ms: 0, n: 2 },
      { cmd: 'fail' },
      { cmd: 'slow', ms: 10, n: 3 },
    ];
    const raw = await exchange(socketPath, requests.map((r) => JSON.stringify(r) + '\n').join(''), 4);
    expect(raw.lines.map((line) => JSON.parse(line))).toEqual([
      { status: 'ok', output: 1 },
      { status: 'ok', output: 2 },
      { status: 'error', error: 'reload failed: networks.corp.prefix is not a valid CIDR' },
      { status: 'ok', output: 3 },
    ]);
  });

  it('answers malformed requests with an error and keeps the connection usable', async () => {
    const { socketPath } = await startServer();
    const bad = ['{"cmd":', '[1,2]', '"status"', '{"command":"status"}', '{"cmd":7}', ''];
    const raw = await exchange(socketPath, bad.join('\n') + '\n{"cmd":"status"}\n', bad.length + 1);
    const responses = raw.lines.map((line) => JSON.parse(line) as { status: string; error?: string });
    expect(responses.slice(0, bad.length).every((r) => r.status === 'error')).toBe(true);
    expect(responses[0]?.error).toMatch(/^malformed JSON request: /);
    expect(responses[1]?.error).toBe('request must be a JSON object, e.g. {"cmd":"status"}');
    expect(responses[3]?.error).toBe('request needs a string "cmd" field, e.g. {"cmd":"status"}');
    expect(responses[5]?.error).toMatch(/^empty request/);
    expect(responses[bad.length]).toEqual({ status: 'ok', output: { uptime_s: 1 } });
    await expectStillAnswers(socketPath);
  });

  it('turns handler exceptions and unencodable output into error responses', async () => {
    const { socketPath } = await startServer();
    const failure = await controlRequest(socketPath, { cmd: 'fail' }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ControlRequestError);
    expect((failure as ControlRequestError).message).toBe('reload failed: networks.corp.prefix is not a valid CIDR');
    expect((failure as ControlRequestError).fromDaemon).toBe(true);

    await expect(controlRequest(socketPath, { cmd: 'frobnicate' })).rejects.toThrow(
      'unknown command "frobnicate": use status, peers, routes, reload or goodbye',
    );
    await expect(controlRequest(socketPath, { cmd: 'bigint' })).rejects.toThrow(/daemon could not encode the response/);
    await expectStillAnswers(socketPath);
  });

  it('closes a connection that sends no complete line within 2 s', async () => {
    const { socketPath } = await startServer();
    const raw = await exchange(socketPath, '{"cmd":"sta');
    expect(raw.closedByServer).toBe(true);
    expect(raw.lines).toEqual(['{"status":"error","error":"timeout: send one JSON request per line within 2s"}']);
    await expectStillAnswers(socketPath);
  });

  it('closes a connection sending a line longer than 64 KiB', async () => {
    const { socketPath } = await startServer();
    const raw = await exchange(socketPath, Buffer.alloc(1024 * 1024, 0x61));
    expect(raw.closedByServer).toBe(true);
    expect(raw.lines).toEqual(['{"status":"error","error":"request too long: more than 65536 bytes without a newline"}']);

    // Also when the oversized line does end in a newline.
    const withNewline = await exchange(socketPath, `{"cmd":"echo","pad":"${'x'.repeat(70_000)}"}\n`);
    expect(withNewline.closedByServer).toBe(true);
    expect(withNewline.lines[0]).toContain('request too long');
    await expectStillAnswers(socketPath);
  });

  it('removes a stale socket file nobody listens on', async () => {
    const dir = await tempDir();
    const socketPath = path.join(dir, 'vibepn.sock');
    // A listening socket hard-linked to the final path, then closed: the link is a socket file
    // with no listener, exactly what a crashed daemon leaves behind.
    const previous = net.createServer();
    await new Promise<void>((resolve) => previous.listen(path.join(dir, 'old.sock'), resolve));
    await fs.link(path.join(dir, 'old.sock'), socketPath);
    await new Promise<void>((resolve) => previous.close(() => resolve()));
    expect((await fs.lstat(socketPath)).isSocket()).toBe(true);

    const { lines } = await startServer(socketPath);
    expect(lines.some((line) => line.includes(`removed stale control socket ${socketPath}`))).toBe(true);
    await expectStillAnswers(socketPath);
  });

  it('refuses to take over a socket a live daemon answers on', async () => {
    const first = await startServer();
    const second = new ControlSocketServer(first.socketPath, handler, memoryLogger().logger);
    await expect(second.start()).rejects.toThrow(`control socket ${first.socketPath} is in use by another vibepn daemon`);
    await expectStillAnswers(first.socketPath);
  });

  it('refuses a path that is not a socket', async () => {
    const socketPath = path.join(await tempDir(), 'vibepn.sock');
    await fs.writeFile(socketPath, 'not a socket');
    const server = new ControlSocketServer(socketPath, handler, memoryLogger().logger);
    await expect(server.start()).rejects.toThrow(`control socket ${socketPath} exists and is not a socket`);
    expect(await fs.readFile(socketPath, 'utf8')).toBe('not a socket');
  });

  it('close() drops connections and removes the socket file', async () => {
    const { server, socketPath } = await startServer();
    const idle = net.connect(socketPath);
    await new Promise((resolve) => idle.once('connect', resolve));
    const idleClosed = new Promise((resolve) => idle.once('close', resolve));
    await server.close();
    await idleClosed;
    await expect(fs.lstat(socketPath)).rejects.toThrow(/ENOENT/);
  });
});

describe('controlRequest', () => {
  it('explains a missing socket', async () => {
    const socketPath = path.join(await tempDir(), 'missing.sock');
    await expect(controlRequest(socketPath, { cmd: 'status' })).rejects.toThrow(
      `cannot reach the vibepn daemon at ${socketPath}: no such file (is \`vpn\` running? use --socket or --config to choose another)`,
    );
  });

  it('gives up after the timeout when the daemon never answers', async () => {
    const socketPath = path.join(await tempDir(), 'mute.sock');
    const mute = net.createServer(() => {});
    await new Promise<void>((resolve) => mute.listen(socketPath, resolve));
    cleanups.push(() => new Promise((resolve) => mute.close(() => resolve())));
    const sockets: net.Socket[] = [];
    mute.on('connection', (socket) => sockets.push(socket));
    await expect(controlRequest(socketPath, { cmd: 'status' }, 200)).rejects.toThrow(
      `no answer from the vibepn daemon at ${socketPath} within 200 ms`,
    );
    for (const socket of sockets) socket.destroy();
  });
});
