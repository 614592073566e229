// Measurements for the hostile and scale tests: a process's memory from /proc, pings that run
// while something else happens, control-socket latency, and the FIGURE lines that
// docs/RELIABILITY.md quotes.
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { controlRequest } from '../../src/control/client.js';

/** Prints one measured figure as `FIGURE name=value`, the form docs/RELIABILITY.md quotes. */
export function figure(name: string, value: number | string): void {
  const shown = typeof value === 'number' ? (Number.isInteger(value) ? String(value) : value.toFixed(2)) : value;
  process.stdout.write(`FIGURE ${name}=${shown}\n`);
}

export interface Memory {
  /** Resident set now, in KiB. */
  rssKb: number;
  /** Peak resident set since start or the last resetPeak(), in KiB. */
  hwmKb: number;
}

export function memoryOf(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssKb: field('VmRSS'), hwmKb: field('VmHWM') };
}

/** Resets VmHWM to the current RSS (clear_refs 5); false where the kernel does not allow it. */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Samples a process's RSS every `everyMs` until stop(); max covers both samples and VmHWM. */
export class MemorySampler {
  private timer: NodeJS.Timeout;
  private peakKb = 0;
  readonly baselineKb: number;

  constructor(
    private readonly pid: number,
    everyMs = 100,
  ) {
    resetPeak(pid);
    this.baselineKb = memoryOf(pid).rssKb;
    this.peakKb = this.baselineKb;
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  private sample(): void {
    try {
      this.peakKb = Math.max(this.peakKb, memoryOf(this.pid).rssKb);
    } catch {
      /* the process is gone; the test notices */
    }
  }

  /** Stops sampling; peak is the larger of the sampled maximum and VmHWM. */
  stop(): { baselineKb: number; peakKb: number; endKb: number; growthKb: number } {
    clearInterval(this.timer);
    const now = memoryOf(this.pid);
    const peakKb = Math.max(this.peakKb, now.hwmKb, now.rssKb);
    return { baselineKb: this.baselineKb, peakKb, endKb: now.rssKb, growthKb: peakKb - this.baselineKb };
  }
}

export interface PingResult {
  sent: number;
  received: number;
  /** Average round trip in ms, NaN when nothing came back. */
  avgMs: number;
  maxMs: number;
}

function parsePing(out: string): PingResult {
  const counts = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(out);
  const rtt = /= [\d.]+\/([\d.]+)\/([\d.]+)\//.exec(out);
  return {
    sent: counts ? Number(counts[1]) : 0,
    received: counts ? Number(counts[2]) : 0,
    avgMs: rtt ? Number(rtt[1]) : NaN,
    maxMs: rtt ? Number(rtt[2]) : NaN,
  };
}

/** `count` pings every `intervalS` from `ns` to `address`, without blocking the event loop. */
export function pingAsync(ns: string, address: string, count: number, intervalS = 0.2): Promise<PingResult> {
  return new Promise((resolve) => {
    const child = spawn('ip', ['netns', 'exec', ns, 'ping', '-n', '-c', String(count), '-i', String(intervalS), '-W', '2', address], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', () => resolve(parsePing(out)));
  });
}

/** A ping that runs until stop(), e.g. for the whole life of a test file. */
export class BackgroundPing {
  private readonly child;
  private out = '';
  private result: Promise<PingResult & { lost: number[] }> | null = null;

  constructor(ns: string, address: string, intervalS = 0.2) {
    this.child = spawn('ip', ['netns', 'exec', ns, 'ping', '-n', '-i', String(intervalS), '-W', '2', address], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout.on('data', (d: Buffer) => (this.out += d.toString()));
  }

  /** Stops it (SIGINT, so ping prints its summary) and returns the totals; idempotent. */
  stop(): Promise<PingResult & { lost: number[] }> {
    this.result ??= this.finish();
    return this.result;
  }

  private async finish(): Promise<PingResult & { lost: number[] }> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise<void>((resolve) => this.child.on('exit', () => resolve()));
      this.child.kill('SIGINT');
      await exited;
    }
    const replies = [...this.out.matchAll(/icmp_seq=(\d+)/g)].map((m) => Number(m[1]));
    const result = parsePing(this.out);
    const seen = new Set(replies);
    // The last request may still be in flight at SIGINT; it does not count as lost.
    const lost: number[] = [];
    for (let seq = 1; seq < result.sent; seq++) if (!seen.has(seq)) lost.push(seq);
    return { ...result, lost };
  }
}

/** Round trips of `status` over the control socket: `count` sequential requests. */
export async function statusLatency(socket: string, count: number, timeoutMs = 5000): Promise<{ p50: number; max: number; all: number[] }> {
  const all: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await controlRequest(socket, { cmd: 'status' }, timeoutMs);
    all.push(performance.now() - started);
  }
  const sorted = [...all].sort((a, b) => a - b);
  return { p50: sorted[Math.floor(sorted.length / 2)]!, max: sorted[sorted.length - 1]!, all };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function checksum(bytes: Uint8Array, start: number, end: number): number {
  let sum = 0;
  for (let i = start; i < end; i += 2) sum += (bytes[i]! << 8) | (i + 1 < end ? bytes[i + 1]! : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** An IPv4 ICMP echo request with valid checksums, `payload` bytes of data. */
export function icmpEcho(src: Uint8Array, dst: Uint8Array, id: number, seq: number, payload = 32): Uint8Array {
  const length = 20 + 8 + payload;
  const p = new Uint8Array(length);
  p[0] = 0x45;
  p[2] = length >> 8;
  p[3] = length & 0xff;
  p[8] = 64;
  p[9] = 1; // ICMP
  p.set(src, 12);
  p.set(dst, 16);
  const ipSum = checksum(p, 0, 20);
  p[10] = ipSum >> 8;
  p[11] = ipSum & 0xff;
  p[20] = 8; // echo request
  p[24] = id >> 8;
  p[25] = id & 0xff;
  p[26] = seq >> 8;
  p[27] = seq & 0xff;
  for (let i = 28; i < length; i++) p[i] = i & 0xff;
  const icmpSum = checksum(p, 20, length);
  p[22] = icmpSum >> 8;
  p[23] = icmpSum & 0xff;
  return p;
}

/** A UDP packet from `src` to `dst` (checksum 0, which IPv4 allows). */
export function udpPacket(src: Uint8Array, dst: Uint8Array, marker = 0): Uint8Array {
  const p = new Uint8Array(32);
  p[0] = 0x45;
  p[3] = 32;
  p[8] = 64;
  p[9] = 17;
  p.set(src, 12);
  p.set(dst, 16);
  p[21] = 9;
  p[23] = 9;
  p[25] = 12;
  p[28] = marker;
  const ipSum = checksum(p, 0, 20);
  p[10] = ipSum >> 8;
  p[11] = ipSum & 0xff;
  return p;
}

/** A `vpn` subprocess (dist/cmd/vpn.js) in this namespace; logs kept in memory. */
export interface DaemonProcess {
  child: import('node:child_process').ChildProcess;
  logs(): string;
  /** SIGTERM, then SIGKILL after 4 s; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Starts `vpn -config configPath` (with `--no-tun` unless told otherwise), optionally under a
 * umask, and waits until its control socket answers a status request.
 */
export async function spawnDaemon(
  vpn: string,
  configPath: string,
  socketPath: string,
  options: { tun?: boolean; umask?: string } = {},
): Promise<DaemonProcess> {
  const args = [vpn, '-config', configPath, ...(options.tun ? [] : ['--no-tun'])];
  const child = options.umask
    ? spawn('sh', ['-c', `umask ${options.umask}; exec "$0" "$@"`, process.execPath, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let logs = '';
  child.stderr!.on('data', (d: Buffer) => (logs += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const started = Date.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`vpn exited ${child.exitCode}: ${logs}`);
    try {
      await controlRequest(socketPath, { cmd: 'status' }, 1000);
      break;
    } catch {
      if (Date.now() - started > 15_000) throw new Error(`vpn did not answer on ${socketPath}: ${logs}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    child,
    logs: () => logs,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 4000);
        const code = await exited;
        clearTimeout(timer);
        return code;
      }
      return child.exitCode;
    },
  };
}
