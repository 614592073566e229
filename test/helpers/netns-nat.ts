// A NAT lab for the NAT-traversal end-to-end tests (test/e2e/nat.test.ts), on a Lab (netns.ts):
//
//   H  192.0.2.1 ──┐                     public bridge, 192.0.2.0/24
//   RA 192.0.2.10 ─┼─ RB 192.0.2.11
//   │ lan0 10.77.1.1   │ lan0 10.77.2.1
//   A  10.77.1.2       B  10.77.2.2
//
// RA and RB are home NAT routers built with nftables: everything from their LAN is forwarded and
// masqueraded on eth0, and nothing from outside gets in or even reaches them unless conntrack
// knows it as a reply (policy drop, also on input: an unsolicited datagram to a router's public
// port would otherwise leave a conntrack entry that takes that port from the next outbound
// mapping, which real NATs do not do). Two NAT kinds:
//   - 'masquerade': port-preserving when it can, one mapping per source (endpoint-independent
//     mapping, address-and-port-dependent filtering): UDP hole punching works;
//   - 'symmetric': `masquerade random,fully-random`, a new random public port per destination:
//     the port the hub saw is useless to anyone else, hole punching fails.
// `cutDirect` drops forwarded UDP between a router's LAN and the other router's public address
// (a broken direct A↔B path, A↔H untouched). `holePunch` runs the lab's premise with plain UDP:
// an observer on H reports the public ip:port it sees, A and B punch to each other's.
// `NatMesh` puts vibepn nodes h, a and b on H, A and B with the NAT-traversal configs.
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { writeIdentityFiles } from '../../src/crypto/identity.js';
import type { NetworkConfig, PeerConfig } from '../../src/config/types.js';
import type { PeerRow } from '../../src/control/api.js';
import { distinctIdentity } from './identities.js';
import { Lab, netnsUnavailable, type Host } from './netns.js';
import { CORP, METRICS_PORT, Mesh, waitFor, type MeshNode } from './netns-mesh.js';
import { nft, nftCounters, nftDeleteTable } from './netns-faults.js';
import { scrape } from './traffic.js';

export type NatKind = 'masquerade' | 'symmetric';

export interface NatRouter {
  host: Host;
  /** Its public address (on eth0, the shared segment). */
  public: string;
  kind: NatKind;
}

export interface NatLab {
  /** H, on the public segment at 192.0.2.1. */
  hub: Host;
  ra: NatRouter;
  rb: NatRouter;
  /** A behind RA (10.77.1.2), B behind RB (10.77.2.2). */
  a: Host;
  b: Host;
}

const NAT_TABLE = 'vtnat';

/** Why the NAT lab alone (no daemons) cannot be built here, or null when it can. */
export function natLabUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root';
  for (const [command, arg] of [['ip', '-V'], ['nft', '--version']] as const) {
    try {
      execFileSync(command, [arg], { stdio: 'ignore' });
    } catch {
      return `needs the '${command}' command`;
    }
  }
  return null;
}

/** Why the NAT end-to-end tests cannot run here (the lab's needs and the daemons'), or null. */
export function natUnavailable(): string | null {
  return natLabUnavailable() ?? netnsUnavailable();
}
const CUT_TABLE = 'vtcut';

/** The router's nftables ruleset. Counters by comment: out, replies, unsolicited-in, unsolicited-fwd, masq. */
function natRuleset(kind: NatKind): string {
  const masquerade = kind === 'symmetric' ? 'masquerade random,fully-random' : 'masquerade';
  return `table inet ${NAT_TABLE} {
  chain input {
    type filter hook input priority 0; policy accept;
    iifname "eth0" ct state established,related accept
    iifname "eth0" counter drop comment "unsolicited-in"
  }
  chain forward {
    type filter hook forward priority 0; policy drop;
    iifname "lan0" oifname "eth0" counter accept comment "out"
    iifname "eth0" oifname "lan0" ct state established,related counter accept comment "replies"
    counter drop comment "unsolicited-fwd"
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "eth0" counter ${masquerade} comment "masq"
  }
}
`;
}

/** Makes `router` a NAT of `kind` (replacing its NAT table; conntrack entries stay). */
export function setNat(router: NatRouter, kind: NatKind): void {
  nftDeleteTable(router.host.ns, 'inet', NAT_TABLE);
  nft(router.host.ns, natRuleset(kind));
  router.kind = kind;
}

/** Builds H, RA, RB, A and B on `lab` (see the top of this file). */
export function buildNatLab(lab: Lab, kinds: { ra?: NatKind; rb?: NatKind } = {}): NatLab {
  const hub = lab.addHost(1);
  const ra: NatRouter = { host: lab.addHost(10), public: '192.0.2.10', kind: kinds.ra ?? 'masquerade' };
  const rb: NatRouter = { host: lab.addHost(11), public: '192.0.2.11', kind: kinds.rb ?? 'masquerade' };
  const a = lab.addHostBehind(ra.host, '10.77.1');
  const b = lab.addHostBehind(rb.host, '10.77.2');
  setNat(ra, ra.kind);
  setNat(rb, rb.kind);
  return { hub, ra, rb, a, b };
}

/** Drops UDP forwarded between `router`'s LAN and `otherPublic` (both ways), until restoreDirect. Counters: cut-out, cut-in. */
export function cutDirect(router: NatRouter, otherPublic: string): void {
  nft(
    router.host.ns,
    `table inet ${CUT_TABLE} {
  chain forward {
    type filter hook forward priority -10; policy accept;
    ip daddr ${otherPublic} meta l4proto udp counter drop comment "cut-out"
    ip saddr ${otherPublic} meta l4proto udp counter drop comment "cut-in"
  }
}
`,
  );
}

export function restoreDirect(router: NatRouter): void {
  nftDeleteTable(router.host.ns, 'inet', CUT_TABLE);
}

/** Packet counters of the router's NAT table and, while it is there, its cut table, by comment. */
export function natCounters(router: NatRouter): Record<string, number> {
  const counts = nftCounters(router.host.ns, 'inet', NAT_TABLE);
  try {
    Object.assign(counts, nftCounters(router.host.ns, 'inet', CUT_TABLE));
  } catch {
    /* no cut in place */
  }
  return counts;
}

// ---- the premise, in plain UDP ----

/**
 * On H: two UDP ports. A message `{"name":…}` records the source ip:port seen on that port; the
 * answer is `{"you":[seen on port 1, on port 2],"others":{name: seen on port 1}}`.
 */
const OBSERVER = `
const dgram = require('dgram');
const [bind, p1, p2] = process.argv.slice(1);
const seen = {};
let bound = 0;
for (const [i, port] of [Number(p1), Number(p2)].entries()) {
  const s = dgram.createSocket('udp4');
  s.on('message', (msg, from) => {
    let name; try { name = JSON.parse(msg.toString()).name; } catch { return; }
    (seen[name] ??= [null, null])[i] = from.address + ':' + from.port;
    const others = {}; for (const [n, v] of Object.entries(seen)) if (n !== name) others[n] = v[0];
    s.send(JSON.stringify({ you: seen[name], others }), from.port, from.address);
  });
  s.bind(port, bind, () => { if (++bound === 2) process.stdout.write('ready\\n'); });
}
process.on('SIGTERM', () => { process.stdout.write(JSON.stringify(seen) + '\\n'); process.exit(0); });
`;

/**
 * On A or B: from bind:port, asks the observer (both ports) until it knows its own mappings and
 * the other's, then sends punches to the other's mapping every 100 ms for punchMs, and reports
 * the punches that came in.
 */
const PUNCHER = `
const dgram = require('dgram');
const [bind, port, obs, p1, p2, name, other, punchMs, giveUpMs] = process.argv.slice(1);
const s = dgram.createSocket('udp4');
const r = { mapped: [null, null], other: null, received: 0, from: null };
let punching = null;
s.on('message', (msg, from) => {
  const text = msg.toString();
  if (text.startsWith('punch ')) { if (text === 'punch ' + other) { r.received++; r.from = from.address + ':' + from.port; } return; }
  if (from.address !== obs) return;
  const answer = JSON.parse(text);
  const i = from.port === Number(p1) ? 0 : 1;
  r.mapped[i] = answer.you[i];
  if (answer.others[other]) r.other = answer.others[other];
});
const done = () => { process.stdout.write(JSON.stringify(r) + '\\n'); process.exit(0); };
s.bind(Number(port), bind, () => {
  const timer = setInterval(() => {
    if (!r.mapped[0] || !r.mapped[1] || !r.other) {
      for (const p of [p1, p2]) s.send(JSON.stringify({ name }), Number(p), obs);
      return;
    }
    punching ??= setTimeout(() => { clearInterval(timer); setTimeout(done, 300); }, Number(punchMs));
    const [host, to] = r.other.split(':');
    s.send('punch ' + name, Number(to), host);
  }, 100);
  setTimeout(done, Number(giveUpMs));
});
`;

export interface PunchResult {
  /** The source ip:port the observer saw on its first and its second port. */
  mapped: [string | null, string | null];
  /** The other side's mapping as the observer saw it (where the punches went). */
  other: string | null;
  /** Punches from the other side that came in, and the last one's source. */
  received: number;
  from: string | null;
}

/** Runs a Node script in `ns` to completion; resolves with its stdout. */
function runScript(ns: string, script: string, args: Array<string | number>, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script, ...args.map(String)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`script in ${ns} exited ${code}: ${err}`));
    });
  });
}

/**
 * Plain-UDP hole punching between A and B (no vibepn): both bind port `port` on their LAN
 * address, learn their public mappings from an observer on H (ports 3478 and 3479), and send to
 * each other's for `punchMs`.
 */
export async function holePunch(nat: NatLab, options: { port?: number; punchMs?: number } = {}): Promise<{ a: PunchResult; b: PunchResult }> {
  const port = options.port ?? 51820;
  const punchMs = options.punchMs ?? 2000;
  const observer = spawn('ip', ['netns', 'exec', nat.hub.ns, process.execPath, '-e', OBSERVER, nat.hub.underlay, '3478', '3479'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let ready = '';
    observer.stdout.on('data', (d: Buffer) => (ready += d.toString()));
    const up = await waitFor(() => ready.includes('ready') || observer.exitCode !== null, 10_000);
    if (up === null || observer.exitCode !== null) throw new Error(`UDP observer in ${nat.hub.ns} did not start`);
    const run = (host: Host, name: string, other: string) =>
      runScript(host.ns, PUNCHER, [host.underlay, port, nat.hub.underlay, 3478, 3479, name, other, punchMs, punchMs + 8000], punchMs + 15_000);
    const [a, b] = await Promise.all([run(nat.a, 'a', 'b'), run(nat.b, 'b', 'a')]);
    return { a: JSON.parse(a) as PunchResult, b: JSON.parse(b) as PunchResult };
  } finally {
    observer.kill('SIGKILL');
  }
}

// ---- vibepn on the NAT lab ----

/** `vpnctl peers --json` rows with the NAT-traversal fields. */
export interface NatPeerRow extends PeerRow {
  /** How the peer is reached; null when not connected. */
  path?: 'direct' | 'relay' | null;
  /** The relay's peer name when path is "relay", else null. */
  via?: string | null;
}

export const RELAY_FORWARDED_PACKETS = 'vibepn_relay_forwarded_packets_total';
export const RELAY_FORWARDED_BYTES = 'vibepn_relay_forwarded_bytes_total';
export const RELAY_DROPPED = 'vibepn_relay_dropped_total';
/** The contract's four reasons, and two more the implementation exports (only shown in logs). */
export const RELAY_DROP_REASONS = ['no_session', 'not_capable', 'queue_full', 'relay_off', 'malformed', 'unexpected'] as const;
export type RelayDropReason = (typeof RELAY_DROP_REASONS)[number];

export interface RelayMetrics {
  forwardedPackets: number;
  forwardedBytes: number;
  dropped: Record<RelayDropReason, number>;
}

/** The sum of every sample of `name` (whatever its other labels) whose labels include all of `labels`. */
export function metricSum(text: string, name: string, ...labels: string[]): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    if (labels.every((l) => (m[2] ?? '').includes(l))) sum += Number(m[3]);
  }
  return sum;
}

export class NatMesh extends Mesh {
  private readonly taken = new Set<string>();
  nat!: NatLab;
  h!: MeshNode;
  a!: MeshNode;
  b!: MeshNode;

  /** The NAT lab with nodes h (on H), a (on A) and b (on B), not configured yet. */
  static async create(kinds: { ra?: NatKind; rb?: NatKind } = {}): Promise<NatMesh> {
    const m = new NatMesh();
    try {
      m.nat = buildNatLab(m.lab, kinds);
      m.h = await m.addNodeOn('h', m.nat.hub);
      m.a = await m.addNodeOn('a', m.nat.a);
      m.b = await m.addNodeOn('b', m.nat.b);
      return m;
    } catch (error) {
      await m.destroy();
      throw error;
    }
  }

  /** A node named `name` on an existing host of the lab (its identity's auto addresses distinct from the others'). */
  async addNodeOn(name: string, host: Host): Promise<MeshNode> {
    const dir = join(this.root, name);
    const identity = await distinctIdentity(name, this.taken);
    writeIdentityFiles(join(dir, 'node.crt'), join(dir, 'node.key'), identity);
    const node: MeshNode = { name, host, dir, fingerprint: identity.fingerprint, socket: join(dir, 'vpn.sock'), runs: [] };
    this.nodes.push(node);
    return node;
  }

  /** Mesh.configure with `[daemon] relay` as given (left out: the default); listens on the node's own address, port 51820. */
  configureNode(node: MeshNode, peers: PeerConfig[], options: { relay?: boolean; networks?: NetworkConfig[] } = {}): void {
    this.configure(node, peers, options.networks ?? [CORP], options.relay === undefined ? {} : { relay: options.relay });
  }

  /**
   * The NAT-traversal configs: h lists a and b by fingerprint without addresses (it never dials
   * them) with `relay` as given (left out: the default); a and b list h at 192.0.2.1:51820 and each
   * other without addresses. Everyone in network corp.
   */
  configureNat(options: { relay?: boolean; hPeers?: MeshNode[] } = {}): void {
    const { h, a, b } = this;
    const inbound = (n: MeshNode) => this.peer(n, ['corp'], { address: '' });
    this.configureNode(h, (options.hPeers ?? [a, b]).map(inbound), { relay: options.relay });
    this.configureNode(a, [this.peer(h), inbound(b)]);
    this.configureNode(b, [this.peer(h), inbound(a)]);
  }

  /** `node`'s peers row for `other` (null when the daemon does not answer or has no such row). */
  async row(node: MeshNode, other: MeshNode): Promise<NatPeerRow | null> {
    const rows = (await this.peers(node)) as NatPeerRow[] | null;
    return rows?.find((r) => r.name === other.name) ?? null;
  }

  /** True when `node` has `other` connected over `path` (and, for "relay", via `via` if given). */
  async hasPath(node: MeshNode, other: MeshNode, path: 'direct' | 'relay', via?: MeshNode): Promise<boolean> {
    const row = await this.row(node, other);
    return !!row?.connected && row.path === path && (via === undefined || row.via === via.name);
  }

  /** Waits until a and b see each other over `path` both ways; the elapsed ms, or null at the timeout. */
  waitPath(path: 'direct' | 'relay', timeoutMs: number, via?: MeshNode): Promise<number | null> {
    return waitFor(async () => (await this.hasPath(this.a, this.b, path, via)) && (await this.hasPath(this.b, this.a, path, via)), timeoutMs, 50);
  }

  /** One line per direction, for failure messages. */
  async describePaths(): Promise<string> {
    const show = (r: NatPeerRow | null) =>
      r ? `connected=${r.connected} path=${r.path} via=${r.via} remote=${r.remote} last_error=${JSON.stringify(r.last_error)}` : 'no answer';
    return `a→b: ${show(await this.row(this.a, this.b))}\nb→a: ${show(await this.row(this.b, this.a))}`;
  }

  /** The relay counters of `node`'s /metrics (0 for any that is absent). */
  relayMetrics(node: MeshNode = this.h): RelayMetrics {
    const text = scrape(node.host.ns, METRICS_PORT);
    const dropped = Object.fromEntries(RELAY_DROP_REASONS.map((r) => [r, metricSum(text, RELAY_DROPPED, `reason="${r}"`)])) as Record<RelayDropReason, number>;
    return { forwardedPackets: metricSum(text, RELAY_FORWARDED_PACKETS), forwardedBytes: metricSum(text, RELAY_FORWARDED_BYTES), dropped };
  }

  /** Lines of `node`'s logs (every run) matching `pattern`. */
  countLog(node: MeshNode, pattern: RegExp): number {
    return this.logs(node, Infinity)
      .split('\n')
      .filter((line) => pattern.test(line)).length;
  }
}
