// Waits until every vibepn node given reports the expected number of connected peers and routes
// over its control socket: all nodes are asked at once, every 100 ms, and a node counts only
// while it holds the figures (one that drops back starts over). Used by bench.sh's fan-in and
// mesh parts, so the wait itself is one Node process, not one vpnctl start-up per node and poll.
//   node mesh-wait.mjs [--since EPOCH_S] [--timeout S] SOCKET:PEERS:ROUTES...
// Prints JSON: formed_s (seconds from --since, default now, until all held at once), reached_s
// (per node, in argument order), polls. On timeout exits 1 and says which nodes lack what.
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { controlRequest } from '../../dist/src/control/client.js';

const args = process.argv.slice(2);
let since = Date.now() / 1000;
let timeoutS = 60;
const nodes = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--since') since = Number(args[++i]);
  else if (args[i] === '--timeout') timeoutS = Number(args[++i]);
  else {
    const m = args[i].match(/^(.+):(\d+):(\d+)$/);
    if (!m) {
      console.error(`mesh-wait.mjs: '${args[i]}' is not SOCKET:PEERS:ROUTES`);
      process.exit(2);
    }
    // Named for the folder that holds the socket (bench.sh: .../n<i>/vpn.sock).
    nodes.push({ socket: m[1], name: path.basename(path.dirname(m[1])), peers: Number(m[2]), routes: Number(m[3]),
      reached: null, last: null });
  }
}
if (!nodes.length || !Number.isFinite(since) || !(timeoutS > 0)) {
  console.error('usage: node mesh-wait.mjs [--since EPOCH_S] [--timeout S] SOCKET:PEERS:ROUTES...');
  process.exit(2);
}

const status = (socket) => controlRequest(socket, { cmd: 'status' }, 2000).then(
  (s) => ({ peers: s.peers_connected, routes: s.routes }),
  (error) => ({ error: /no such file/.test(error.message) ? 'no control socket (still starting, or exited)'
    : error.message.replace(socket, 'its socket') }));

let polls = 0;
for (;;) {
  const statuses = await Promise.all(nodes.map((n) => status(n.socket)));
  polls++;
  const now = Date.now() / 1000 - since;
  nodes.forEach((n, i) => {
    const s = (n.last = statuses[i]);
    if (s.peers === n.peers && s.routes === n.routes) n.reached ??= now;
    else n.reached = null;
  });
  if (nodes.every((n) => n.reached != null)) {
    const round = (v) => Math.round(v * 1000) / 1000;
    console.log(JSON.stringify({ formed_s: round(now), reached_s: nodes.map((n) => round(n.reached)), polls }));
    process.exit(0);
  }
  if (now > timeoutS) {
    const lacking = nodes.filter((n) => n.reached == null).map((n) => `${n.name}: ${n.last.error ??
      `${n.last.peers} of ${n.peers} peers connected, ${n.last.routes} of ${n.routes} routes`}`);
    console.error(`not every node had its peers and routes after ${timeoutS} s (${lacking.length} of ${nodes.length}` +
      ` lacking; their daemons' logs follow):\n  ${lacking.slice(0, 10).join('\n  ')}` +
      (lacking.length > 10 ? `\n  … and ${lacking.length - 10} more` : ''));
    process.exit(1);
  }
  await sleep(100);
}
