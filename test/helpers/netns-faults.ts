// Faults on the underlay for end-to-end tests, built from what the kernel here has (no netem):
// random loss and blackholes with nftables inside a namespace, delay (and optional jitter, which
// reorders) with a UDP relay process running inside a namespace between two daemons, and a
// timestamped ping loop to measure gaps in overlay traffic.
import { spawn, type ChildProcess } from 'node:child_process';
import { inNs } from './netns.js';
import { TRAFFIC_CLIENT } from './traffic.js';

/** Loads an nftables ruleset (nft -f syntax) in `ns`. */
export function nft(ns: string, ruleset: string): void {
  inNs(ns, 'nft', ['-f', '-'], { input: ruleset });
}

/** Deletes an nftables table in `ns` if it exists. */
export function nftDeleteTable(ns: string, family: string, table: string): void {
  try {
    inNs(ns, 'nft', ['delete', 'table', family, table]);
  } catch {
    /* not there */
  }
}

/** Packet counts of the `counter` statements in a table, by the rule's comment. */
export function nftCounters(ns: string, family: string, table: string): Record<string, number> {
  const out = JSON.parse(inNs(ns, 'nft', ['-j', 'list', 'table', family, table])) as {
    nftables: Array<{ rule?: { comment?: string; expr?: Array<Record<string, unknown>> } }>;
  };
  const counts: Record<string, number> = {};
  for (const item of out.nftables) {
    const rule = item.rule;
    if (!rule?.comment) continue;
    for (const expr of rule.expr ?? []) {
      const counter = expr.counter as { packets?: number } | undefined;
      if (counter) counts[rule.comment] = (counts[rule.comment] ?? 0) + (counter.packets ?? 0);
    }
  }
  return counts;
}

/**
 * `percent` % random loss of the UDP datagrams leaving `ns` from the given source ports; in a
 * relay namespace, that is each direction through the relay. Matched on output, where a relay's
 * datagrams are one packet each: on input a GSO sender's burst arrives as one packet and would be
 * dropped whole. Counters: `lost` and `passed`.
 */
export function randomLoss(ns: string, sourcePorts: number[], percent: number, table = 'vtloss'): void {
  const rules = sourcePorts
    .map(
      (port) => `    udp sport ${port} numgen random mod 100 < ${percent} counter drop comment "lost-${port}"
    udp sport ${port} counter comment "passed-${port}"`,
    )
    .join('\n');
  nft(
    ns,
    `table inet ${table} {
  chain output {
    type filter hook output priority 0; policy accept;
${rules}
  }
}
`,
  );
}

/** Drops everything in and out of `ns` on interface `dev` (a dead underlay, the link still up). */
export function blackhole(ns: string, dev = 'eth0', table = 'vtdown'): void {
  nft(
    ns,
    `table inet ${table} {
  chain input {
    type filter hook input priority -10; policy accept;
    iifname "${dev}" counter drop comment "in"
  }
  chain output {
    type filter hook output priority -10; policy accept;
    oifname "${dev}" counter drop comment "out"
  }
}
`,
  );
}

const RELAY = `
const dgram = require('dgram');
const [bindHost, portA, toAHost, toAPort, portB, toBHost, toBPort, delayMs, jitterMs, dropPct] = process.argv.slice(1);
const delay = Number(delayMs), jitter = Number(jitterMs);
const stats = { aToB: 0, bToA: 0, maxQueue: 0, maxDwellMs: 0, sendErrors: 0 };
const sockA = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
const sockB = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
// One queue of (due, socket, datagram, host, port), kept sorted by due time; one timer for its head.
const queue = []; let timer = null;
function pump() {
  timer = null;
  const now = performance.now();
  while (queue.length && queue[0][0] <= now) {
    const [due, sock, msg, host, port, arrived] = queue.shift();
    if (now - arrived > stats.maxDwellMs) stats.maxDwellMs = now - arrived;
    if (Number(dropPct) && Math.random() * 100 < Number(dropPct)) continue;
    sock.send(msg, port, host, (error) => { if (error) stats.sendErrors++; });
  }
  if (queue.length) timer = setTimeout(pump, Math.max(0, queue[0][0] - performance.now()));
}
function enqueue(sock, msg, host, port) {
  const arrived = performance.now();
  const due = arrived + delay + (jitter ? Math.random() * jitter : 0);
  let i = queue.length;
  while (i > 0 && queue[i - 1][0] > due) i--;
  queue.splice(i, 0, [due, sock, msg, host, port, arrived]);
  if (queue.length > stats.maxQueue) stats.maxQueue = queue.length;
  if (timer === null || i === 0) { if (timer) clearTimeout(timer); timer = setTimeout(pump, Math.max(0, due - performance.now())); }
}
sockA.on('message', (msg) => { stats.aToB++; enqueue(sockB, msg, toBHost, Number(toBPort)); });
sockB.on('message', (msg) => { stats.bToA++; enqueue(sockA, msg, toAHost, Number(toAPort)); });
let bound = 0;
const ready = () => { if (++bound === 2) process.stdout.write('ready\\n'); };
sockA.bind(Number(portA), bindHost, ready);
sockB.bind(Number(portB), bindHost, ready);
process.on('SIGTERM', () => { process.stdout.write(JSON.stringify(stats) + '\\n'); process.exit(0); });
`;

export interface RelayOptions {
  /** Address the relay binds in its namespace. */
  bind: string;
  /** Port facing daemon A (A's config names `bind:portA` as B's address); forwarded to B. */
  portA: number;
  /** Port facing daemon B; forwarded to A. */
  portB: number;
  /** Where datagrams from B go (A's listen address). */
  a: { host: string; port: number };
  /** Where datagrams from A go (B's listen address). */
  b: { host: string; port: number };
  /** One-way delay added to every datagram, each direction. */
  delayMs: number;
  /** Extra random delay 0..jitterMs per datagram (reorders). */
  jitterMs?: number;
  /** Datagrams the relay itself drops at random, in % (nftables is the usual way; see randomLoss). */
  dropPercent?: number;
}

export interface RelayStats {
  aToB: number;
  bToA: number;
  maxQueue: number;
  /** Longest a datagram waited in the relay (the delay plus event-loop lateness). */
  maxDwellMs: number;
  /** Sends the kernel refused (nftables drops on output show up here). */
  sendErrors: number;
}

export interface Relay {
  readonly process: ChildProcess;
  /** Stops the relay and returns what it forwarded. */
  stop(): Promise<RelayStats>;
}

/**
 * A UDP relay inside `ns` that delays every datagram: what arrives on `bind:portA` (from A) is
 * sent to B from `bind:portB`, and what arrives on `bind:portB` (from B) is sent to A from
 * `bind:portA`. Each daemon sees the other at the relay's address.
 */
export async function startRelay(ns: string, options: RelayOptions): Promise<Relay> {
  const args = [options.bind, options.portA, options.a.host, options.a.port, options.portB, options.b.host, options.b.port, options.delayMs, options.jitterMs ?? 0, options.dropPercent ?? 0];
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', RELAY, ...args.map(String)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const started = Date.now();
  while (!out.includes('ready')) {
    if (child.exitCode !== null || Date.now() - started > 10_000) throw new Error(`UDP relay in ${ns} did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    process: child,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        await exited;
      }
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (!line) throw new Error(`UDP relay in ${ns} reported nothing: ${err}`);
      return JSON.parse(line) as RelayStats;
    },
  };
}

export interface PingReply {
  /** Wall-clock ms (ping -D) when the reply arrived. */
  at: number;
  seq: number;
  rttMs: number;
}

export interface PingLoop {
  /** Stops the loop (SIGINT) and returns every reply. */
  stop(): Promise<PingReply[]>;
  /** Replies seen so far. */
  replies(): PingReply[];
}

/** A continuous `ping -D -i interval` from `ns` to `address`, each reply timestamped. */
export function startPingLoop(ns: string, address: string, intervalS = 0.1): PingLoop {
  const child = spawn('ip', ['netns', 'exec', ns, 'ping', '-n', '-D', '-i', String(intervalS), address], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const parse = (): PingReply[] => {
    const replies: PingReply[] = [];
    for (const m of out.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from [^:]+: icmp_seq=(\d+) ttl=\d+ time=([\d.]+) ms/gm)) {
      replies.push({ at: Number(m[1]) * 1000, seq: Number(m[2]), rttMs: Number(m[3]) });
    }
    return replies;
  };
  return {
    replies: parse,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGINT');
        await exited;
      }
      return parse();
    },
  };
}

const SINK = `
const net = require('net'), crypto = require('crypto');
const [host, port] = [process.argv[1], Number(process.argv[2])];
const server = net.createServer((socket) => {
  const hash = crypto.createHash('sha256'); let bytes = 0;
  const progress = setInterval(() => process.stdout.write('progress ' + bytes + '\\n'), 1000);
  socket.on('data', (d) => { hash.update(d); bytes += d.length; });
  socket.on('end', () => { clearInterval(progress); process.stdout.write('done ' + bytes + ' ' + hash.digest('hex') + '\\n'); socket.end(); server.close(); });
});
server.listen(port, host, () => process.stdout.write('ready\\n'));
`;

// traffic.ts's deterministic stream, so the figures compare.
const SOURCE = TRAFFIC_CLIENT;

export interface TimedTransfer {
  /** "<bytes> <sha256>" as sent, null if the sender did not finish. */
  sent: string | null;
  /** "<bytes> <sha256>" as received, null if the receiver did not finish. */
  received: string | null;
  /** Bytes the receiver had when the transfer ended or was given up. */
  receivedBytes: number;
  ms: number;
  timedOut: boolean;
}

/**
 * A TCP transfer of `bytes` deterministic bytes from `fromNs` to `address` in `toNs`, without
 * blocking the event loop (other tests may run meanwhile), given up after `timeoutMs`.
 */
export async function timedTcpTransfer(fromNs: string, toNs: string, address: string, bytes: number, options: { port?: number; timeoutMs: number }): Promise<TimedTransfer> {
  const port = String(options.port ?? 5201);
  const server = spawn('ip', ['netns', 'exec', toNs, process.execPath, '-e', SINK, address, port], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  server.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  server.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const started = Date.now();
  while (!out.includes('ready')) {
    if (server.exitCode !== null || Date.now() - started > 10_000) throw new Error(`TCP sink in ${toNs} did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const t0 = performance.now();
  const client = spawn('ip', ['netns', 'exec', fromNs, process.execPath, '-e', SOURCE, address, port, String(bytes)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let sent = '';
  client.stdout!.on('data', (d: Buffer) => (sent += d.toString()));
  const exited = (child: ChildProcess): Promise<void> => new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    Promise.all([exited(client), exited(server)]).then(() => false),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), options.timeoutMs))),
  ]);
  clearTimeout(timer);
  const ms = performance.now() - t0;
  for (const child of [client, server]) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await Promise.all([exited(client), exited(server)]);
  const done = (text: string): string | null => /^(?:done )?(\d+ [0-9a-f]{64})$/m.exec(text)?.[1] ?? null;
  const received = done(out);
  const progress = [...out.matchAll(/^progress (\d+)$/gm)].at(-1)?.[1];
  const receivedBytes = received ? Number(received.split(' ')[0]) : Number(progress ?? 0);
  return { sent: done(sent), received, receivedBytes, ms, timedOut };
}

const ECHO_SERVER = `
const dgram = require('dgram');
const [host, port] = [process.argv[1], Number(process.argv[2])];
const s = dgram.createSocket('udp4');
s.on('message', (msg, from) => s.send(msg, from.port, from.address));
s.bind(port, host, () => process.stdout.write('ready\\n'));
`;

const ECHO_CLIENT = `
const dgram = require('dgram');
const [host, port, count, intervalMs, waitMs] = process.argv.slice(1).map((v, i) => (i ? Number(v) : v));
const s = dgram.createSocket('udp4');
const sentAt = new Map(), rtts = new Map(); let dups = 0, seq = 0;
s.on('message', (msg) => {
  const n = msg.readUInt32BE(0);
  if (!sentAt.has(n)) return;
  if (rtts.has(n)) { dups++; return; }
  rtts.set(n, performance.now() - sentAt.get(n));
  if (rtts.size === count) finish();
});
function finish() {
  const values = [...rtts.values()];
  const missing = []; for (let n = 1; n <= count; n++) if (!rtts.has(n)) missing.push(n);
  process.stdout.write(JSON.stringify({ sent: count, received: rtts.size, duplicates: dups, missing,
    minMs: Math.min(...values), avgMs: values.reduce((a, b) => a + b, 0) / (values.length || 1), maxMs: Math.max(...values) }) + '\\n');
  process.exit(0);
}
const timer = setInterval(() => {
  const b = Buffer.alloc(64); b.writeUInt32BE(++seq, 0); sentAt.set(seq, performance.now()); s.send(b, port, host);
  if (seq === count) { clearInterval(timer); setTimeout(finish, waitMs); }
}, intervalMs);
`;

export interface EchoResult {
  sent: number;
  /** Distinct datagrams echoed back (late ones count, within the wait). */
  received: number;
  duplicates: number;
  missing: number[];
  minMs: number;
  avgMs: number;
  maxMs: number;
}

/**
 * `count` numbered UDP datagrams from `fromNs` to an echo server on `address` in `toNs`, one every
 * `intervalMs`; each echo waited for until `waitMs` after the last send. Unlike ping, a late answer
 * still counts, and duplicates are seen.
 */
export async function udpEcho(fromNs: string, toNs: string, address: string, options: { count: number; intervalMs: number; waitMs: number; port?: number }): Promise<EchoResult> {
  const port = String(options.port ?? 7007);
  const server = spawn('ip', ['netns', 'exec', toNs, process.execPath, '-e', ECHO_SERVER, address, port], { stdio: ['ignore', 'pipe', 'pipe'] });
  let ready = '';
  server.stdout!.on('data', (d: Buffer) => (ready += d.toString()));
  try {
    const started = Date.now();
    while (!ready.includes('ready')) {
      if (server.exitCode !== null || Date.now() - started > 10_000) throw new Error(`UDP echo server in ${toNs} did not start`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const client = spawn('ip', ['netns', 'exec', fromNs, process.execPath, '-e', ECHO_CLIENT, address, port, String(options.count), String(options.intervalMs), String(options.waitMs)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    client.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    client.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise<void>((resolve) => client.once('exit', () => resolve()));
    const line = out.split('\n').find((l) => l.startsWith('{'));
    if (!line) throw new Error(`UDP echo client in ${fromNs} reported nothing: ${err}`);
    return JSON.parse(line) as EchoResult;
  } finally {
    server.kill('SIGKILL');
  }
}
