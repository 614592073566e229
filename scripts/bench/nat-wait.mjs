// Waits until a vibepn node reports a peer on the given path ("direct" or "relay") over its
// control socket, polling every 50 ms, so that bench.sh's NAT part times a path change without
// one vpnctl start-up per poll.
//   node nat-wait.mjs --socket SOCKET --peer NAME --path direct|relay [--since EPOCH_S] [--timeout S]
// Prints JSON: {"s": seconds from --since (default now) until the path was seen, "remote": ...}.
// On timeout exits 1 and says what the node reported last.
import { setTimeout as sleep } from 'node:timers/promises';
import { controlRequest } from '../../dist/src/control/client.js';

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, arg, i, all) => (i % 2 ? pairs : [...pairs, [arg.replace(/^--/, ''), all[i + 1]]]), []));
const since = args.since ? Number(args.since) : Date.now() / 1000;
const timeoutS = Number(args.timeout ?? 30);
if (!args.socket || !args.peer || !['direct', 'relay'].includes(args.path) || !Number.isFinite(since) || !(timeoutS > 0)) {
  console.error('usage: node nat-wait.mjs --socket SOCKET --peer NAME --path direct|relay [--since EPOCH_S] [--timeout S]');
  process.exit(2);
}
let last = 'nothing yet';
for (;;) {
  try {
    const rows = await controlRequest(args.socket, { cmd: 'peers' }, 2000);
    const row = rows.find((r) => r.name === args.peer);
    last = row ? JSON.stringify({ connected: row.connected, path: row.path, via: row.via, last_error: row.last_error }) : `no peer named ${args.peer}`;
    if (row?.connected && row.path === args.path) {
      console.log(JSON.stringify({ s: Math.round((Date.now() / 1000 - since) * 1000) / 1000, remote: row.remote }));
      process.exit(0);
    }
  } catch (error) {
    last = error.message;
  }
  if (Date.now() / 1000 - since > timeoutS) {
    console.error(`${args.peer} not on a ${args.path} path after ${timeoutS} s; last seen: ${last}`);
    process.exit(1);
  }
  await sleep(50);
}
