// A hand-driven hostile QUIC peer that runs as its own process inside a network namespace, so it
// dials from a real underlay address (the daemon's admission looks at the source IP). It is the
// built QuicEndpoint from dist/ (the same code the daemon runs), driven over stdin/stdout with
// one JSON object per line: the test sends {id, op, args}, the agent answers {id, ok, result} or
// {id, ok: false, error}, and pushes {event, ...} lines (connection closes, stream resets).
//
// Everything the agent sends is built by the test with src/control/messages.ts and
// src/forward/frame.ts and passed as hex, except the flood generators, which must make tens of
// thousands of messages per second inside the agent.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { REPO } from './netns.js';

const AGENT = String.raw`
const { pathToFileURL } = await import('node:url');
const { createInterface } = await import('node:readline');
const [dist, bindHost] = process.argv.slice(1);
const load = (p) => import(pathToFileURL(dist + p).href);
const { QuicEndpoint } = await load('/src/quic/endpoint.js');
const { Logger } = await load('/src/log/logger.js');
const { encodeControlMessage } = await load('/src/control/messages.js');
const logger = new Logger('agent', { sink: () => {} });
const endpoints = new Map();
const conns = new Map();
const streams = new Map();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const turn = () => new Promise((r) => setImmediate(r));
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const fromHex = (h) => Buffer.from(h, 'hex');

function watchConnection(id, c) {
  const state = { c, closed: null, peerStreams: 0, peerBytes: 0 };
  conns.set(id, state);
  c.onStream = (s) => {
    state.peerStreams++;
    s.onData = (d) => (state.peerBytes += d.length);
    s.onEnd = () => s.end();
  };
  return state;
}

// 'early' is written on a first stream (the control stream) from inside onEstablished, before
// the daemon can have decided anything about this connection.
function connect(ep, id, target, timeoutMs, early) {
  const c = endpoints.get(ep).connect(target);
  const state = watchConnection(id, c);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ established: false, timedOut: true }), timeoutMs);
    c.onEstablished = () => {
      clearTimeout(timer);
      if (early) watchStream(id + 'c', c.openStream()).s.write(fromHex(early));
      resolve({ established: true });
    };
    c.onClose = (info) => {
      state.closed = info;
      emit({ event: 'close', conn: id, info });
      clearTimeout(timer);
      resolve({ established: false, close: info });
    };
  });
}

function watchStream(id, s) {
  const state = { s, received: 0, reset: null, ended: false };
  streams.set(id, state);
  s.onData = (d) => (state.received += d.length);
  s.onEnd = () => (state.ended = true);
  s.onReset = (code) => {
    state.reset = code;
    emit({ event: 'reset', stream: id, code });
  };
  return state;
}

function junkAnnounce(n, network, routes, prefixBytes) {
  const list = [];
  for (let i = 0; i < routes; i++) {
    const head = 'junk-' + n + '-' + i + '-';
    list.push({ prefix: (head + 'x'.repeat(Math.max(0, prefixBytes - head.length))).slice(0, 255), metric: 1 });
  }
  return encodeControlMessage({ type: 'announce', network: network.replace('#', String(n)), routes: list });
}

const ops = {
  async endpoint({ id, certPem, keyPem }) {
    const ep = await QuicEndpoint.listen({ listen: bindHost + ':0', certPem, keyPem, logger });
    endpoints.set(id, ep);
    return { port: ep.port };
  },
  async closeEndpoint({ id }) {
    await endpoints.get(id)?.close();
    endpoints.delete(id);
    return {};
  },
  connect({ ep, conn, target, timeoutMs = 5000, early }) {
    return connect(ep, conn, target, timeoutMs, early);
  },
  close({ conn, code = 0, reason = '' }) {
    conns.get(conn)?.c.close(code, reason);
    return {};
  },
  connection({ conn }) {
    const st = conns.get(conn);
    return { closed: st.closed, peerStreams: st.peerStreams, peerBytes: st.peerBytes, stats: st.c.stats() };
  },
  open({ conn, stream }) {
    watchStream(stream, conns.get(conn).c.openStream());
    return {};
  },
  write({ stream, hex, end = false }) {
    const st = streams.get(stream);
    const accepted = st.s.write(fromHex(hex));
    if (end) st.s.end();
    return { accepted, buffered: st.s.bufferedBytes };
  },
  stream({ stream }) {
    const st = streams.get(stream);
    return { received: st.received, reset: st.reset, ended: st.ended, buffered: st.s.bufferedBytes };
  },
  // Writes 'count' messages at 'perSecond' in 10 ms slices. kind 'fixed' repeats hex; kind
  // 'junk-announce' makes every message unique (network name '#' is replaced by the counter).
  async flood({ conn, stream, kind, hex, network = 'junk#', routes = 1, prefixBytes = 32, perSecond, count }) {
    const st = streams.get(stream);
    const cs = conns.get(conn);
    const fixed = kind === 'fixed' ? fromHex(hex) : null;
    const started = performance.now();
    let made = 0;
    let bytes = 0;
    let maxBuffered = 0;
    let stalledSlices = 0;
    // QuicStream.write() refuses data beyond 4 MiB queued: stay below that, so every message
    // counted as made was really handed to QUIC. Past it the daemon is not taking the data (flow
    // control) and the flood slows down to what the daemon reads.
    const QUEUE_LIMIT = 3 * 1024 * 1024;
    while (made < count && !cs.closed) {
      const due = Math.min(count, Math.floor(((performance.now() - started) / 1000) * perSecond) + 1);
      if (due > made && st.s.bufferedBytes < QUEUE_LIMIT) {
        const parts = [];
        let size = 0;
        for (; made < due && st.s.bufferedBytes + size < QUEUE_LIMIT; made++) {
          const message = fixed ?? junkAnnounce(made, network, routes, prefixBytes);
          parts.push(message);
          size += message.length;
        }
        const chunk = Buffer.concat(parts);
        bytes += chunk.length;
        if (!st.s.writable) break;
        st.s.write(chunk);
      } else if (due > made) {
        stalledSlices++;
      }
      maxBuffered = Math.max(maxBuffered, st.s.bufferedBytes);
      await sleep(10);
    }
    // Let the queue drain (or the connection close) before reporting.
    const drainBy = performance.now() + 10000;
    while (!cs.closed && st.s.bufferedBytes > 0 && performance.now() < drainBy) await sleep(20);
    return { made, bytes, ms: Math.round(performance.now() - started), maxBuffered, stalledSlices, left: st.s.bufferedBytes, closed: cs.closed };
  },
  // Opens 'count' streams, one after another, each carrying hex (and FIN when fin). When the
  // daemon's stream limit is used up the agent waits for it to grant more, until deadlineMs.
  async manyStreams({ conn, count, hex, fin = true, deadlineMs = 20000, wait = true }) {
    const cs = conns.get(conn);
    const bytes = fromHex(hex);
    const started = performance.now();
    let opened = 0;
    let limited = 0;
    let resets = 0;
    let finished = 0;
    const all = [];
    while (opened < count && !cs.closed && performance.now() - started < deadlineMs) {
      let s;
      try {
        s = cs.c.openStream();
      } catch (error) {
        if (!/stream limit/.test(error.message)) throw error;
        limited++;
        if (!wait) break;
        await sleep(2);
        continue;
      }
      s.onData = () => {};
      s.onEnd = () => finished++;
      s.onReset = () => resets++;
      s.write(bytes);
      if (fin) s.end();
      else all.push(s);
      opened++;
      // Let the connection pump: quiche creates the stream (and counts it against the limit)
      // only when its first bytes go out.
      if (opened % 16 === 0) await turn();
    }
    const settleBy = performance.now() + (fin ? 5000 : 500);
    while (!cs.closed && (fin ? finished + resets < opened : true) && performance.now() < settleBy) await sleep(20);
    // Streams whose bytes all left for the daemon (the rest wait for the daemon's stream limit).
    let delivered = 0;
    for (const s of all) if (s.bufferedBytes === 0) delivered++;
    return { opened, delivered, limited, resets, finished, ms: Math.round(performance.now() - started), closed: cs.closed };
  },
  // Many handshakes from strangers: each identity gets its own endpoint and dials 'perIdentity'
  // times; the dials are spread evenly over spreadMs. Reports how each connection ended.
  async strangers({ target, identities, perIdentity, spreadMs, settleMs = 8000 }) {
    const eps = [];
    for (const identity of identities) {
      eps.push(await QuicEndpoint.listen({ listen: bindHost + ':0', certPem: identity.certPem, keyPem: identity.keyPem, logger }));
    }
    const total = eps.length * perIdentity;
    const outcomes = { established: 0, closedByPeer: {}, closedLocally: 0, open: 0 };
    const pending = [];
    const started = performance.now();
    for (let i = 0; i < total; i++) {
      const wait = started + (i * spreadMs) / total - performance.now();
      if (wait > 0) await sleep(wait);
      const c = eps[i % eps.length].connect(target);
      pending.push(
        new Promise((resolve) => {
          const timer = setTimeout(() => {
            outcomes.open++;
            resolve();
          }, settleMs);
          c.onEstablished = () => outcomes.established++;
          c.onClose = (info) => {
            clearTimeout(timer);
            if (info.local) outcomes.closedLocally++;
            else {
              const key = info.isApp ? 'app:' + info.errorCode + ':' + info.reason : 'transport:' + info.errorCode;
              outcomes.closedByPeer[key] = (outcomes.closedByPeer[key] ?? 0) + 1;
            }
            resolve();
          };
        }),
      );
    }
    const dialMs = Math.round(performance.now() - started);
    await Promise.all(pending);
    const ms = Math.round(performance.now() - started);
    await Promise.all(eps.map((e) => e.close()));
    return { total, dialMs, ms, ...outcomes };
  },
};

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let request;
  try {
    request = JSON.parse(line);
  } catch {
    return;
  }
  Promise.resolve()
    .then(() => ops[request.op](request.args ?? {}))
    .then(
      (result) => emit({ id: request.id, ok: true, result }),
      (error) => emit({ id: request.id, ok: false, error: String(error && error.stack ? error.stack : error) }),
    );
});
rl.on('close', () => process.exit(0));
emit({ event: 'ready' });
`;

export interface CloseInfo {
  local: boolean;
  errorCode: number;
  reason: string;
  isApp: boolean;
  timedOut: boolean;
}

export type AgentEvent = { event: 'close'; conn: string; info: CloseInfo } | { event: 'reset'; stream: string; code: number } | { event: 'ready' };

/** One hostile agent process in namespace `ns`, binding its endpoints to `bindHost`. */
export class HostileAgent {
  readonly events: AgentEvent[] = [];
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private stderr = '';

  private constructor(private readonly child: ChildProcess) {}

  static async start(ns: string, bindHost: string): Promise<HostileAgent> {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', AGENT, join(REPO, 'dist'), bindHost], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const agent = new HostileAgent(child);
    child.stderr!.on('data', (d: Buffer) => (agent.stderr += d.toString()));
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`hostile agent in ${ns} did not start: ${agent.stderr}`)), 15_000);
      child.on('exit', (code) => reject(new Error(`hostile agent in ${ns} exited ${code}: ${agent.stderr}`)));
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const message = JSON.parse(line) as { id?: number; ok?: boolean; result?: unknown; error?: string } & Partial<AgentEvent>;
        if (message.event) {
          agent.events.push(message as AgentEvent);
          if (message.event === 'ready') {
            clearTimeout(timer);
            resolve();
          }
          return;
        }
        const pending = agent.waiting.get(message.id!);
        if (!pending) return;
        agent.waiting.delete(message.id!);
        if (message.ok) pending.resolve(message.result);
        else pending.reject(new Error(`hostile agent: ${message.error}`));
      });
    });
    await ready;
    return agent;
  }

  get pid(): number {
    return this.child.pid!;
  }

  call<T = Record<string, unknown>>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.stdin!.write(JSON.stringify({ id, op, args }) + '\n');
    });
  }

  /** The close of connection `conn`, waiting up to `timeoutMs` for it. */
  async closed(conn: string, timeoutMs = 10_000): Promise<CloseInfo> {
    const started = Date.now();
    for (;;) {
      const event = this.events.find((e): e is Extract<AgentEvent, { event: 'close' }> => e.event === 'close' && e.conn === conn);
      if (event) return event.info;
      if (Date.now() - started > timeoutMs) throw new Error(`connection ${conn} was not closed within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  isClosed(conn: string): boolean {
    return this.events.some((e) => e.event === 'close' && e.conn === conn);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.on('exit', () => resolve()));
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }
}

export const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
