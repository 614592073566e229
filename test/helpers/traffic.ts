// Real traffic between namespaces: TCP transfers with SHA-256 on both ends, pings, metrics scrapes.
import { spawn } from 'node:child_process';
import { inNs } from './netns.js';

const SERVER = `
const net = require('net'), crypto = require('crypto');
const [host, port] = [process.argv[1], Number(process.argv[2])];
const server = net.createServer((socket) => {
  const hash = crypto.createHash('sha256'); let bytes = 0;
  socket.on('data', (d) => { hash.update(d); bytes += d.length; });
  socket.on('end', () => { process.stdout.write(bytes + ' ' + hash.digest('hex') + '\\n'); socket.end(); server.close(); });
});
server.listen(port, host, () => process.stdout.write('ready\\n'));
setTimeout(() => process.exit(3), 120000).unref();
`;

/** Sends `total` bytes of a deterministic stream; prints `<sent> <sha256>` when the socket closes. */
export const TRAFFIC_CLIENT = `
const net = require('net'), crypto = require('crypto');
const [host, port, total] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
let seed = crypto.createHash('sha256').update('vibepn').digest();
const hash = crypto.createHash('sha256'); let sent = 0;
const socket = net.connect(port, host, () => {
  const pump = () => {
    while (sent < total) {
      const chunk = Buffer.alloc(Math.min(65536, total - sent));
      for (let i = 0; i < chunk.length; i += 32) { seed = crypto.createHash('sha256').update(seed).digest(); seed.copy(chunk, i); }
      hash.update(chunk); sent += chunk.length;
      if (!socket.write(chunk)) return socket.once('drain', pump);
    }
    socket.end();
  };
  pump();
});
socket.on('close', () => process.stdout.write(sent + ' ' + hash.digest('hex') + '\\n'));
socket.on('error', (e) => { process.stderr.write(e.message + '\\n'); process.exit(2); });
`;

export interface Transfer {
  sent: string;
  received: string;
}

/** Sends `bytes` of deterministic data over TCP from one namespace to `address` in another. */
export async function tcpTransfer(fromNs: string, toNs: string, address: string, bytes: number, port = 5201): Promise<Transfer> {
  const server = spawn('ip', ['netns', 'exec', toNs, process.execPath, '-e', SERVER, address, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  server.stdout.on('data', (d: Buffer) => (out += d.toString()));
  let err = '';
  server.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const started = Date.now();
  while (!out.includes('ready')) {
    if (server.exitCode !== null || Date.now() - started > 10_000) throw new Error(`TCP server in ${toNs} did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const sent = inNs(fromNs, process.execPath, ['-e', TRAFFIC_CLIENT, address, String(port), String(bytes)], { timeout: 120_000 }).trim();
  await new Promise<void>((resolve) => (server.exitCode !== null ? resolve() : server.on('exit', () => resolve())));
  const received = out.replace('ready\n', '').trim();
  return { sent, received };
}

/** Pings `address` from `ns`; returns how many replies came back. */
export function ping(ns: string, address: string, count = 3): number {
  try {
    const out = inNs(ns, 'ping', ['-c', String(count), '-i', '0.2', '-W', '2', address], { timeout: 20_000 });
    if (process.env.VIBEPN_DEBUG) console.log(out);
    const m = /(\d+) (?:packets )?received/.exec(out);
    return m ? Number(m[1]) : 0;
  } catch (error) {
    const out = String((error as { stdout?: string }).stdout ?? '');
    const m = /(\d+) (?:packets )?received/.exec(out);
    return m ? Number(m[1]) : 0;
  }
}

/** Scrapes a daemon's /metrics from inside its namespace. */
export function scrape(ns: string, port: number): string {
  return inNs(ns, process.execPath, ['-e', `fetch('http://127.0.0.1:${port}/metrics').then(r=>r.text()).then(t=>process.stdout.write(t))`]);
}

/** The value of one sample, by metric name and label substrings; 0 if absent. */
export function sample(text: string, name: string, ...labels: string[]): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + (labels.length ? '{' : ' '))) continue;
    if (labels.every((l) => line.includes(l))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}
