// Loopback throughput of one QUIC stream, both endpoints in this one process (so one core does
// the sending AND the receiving side: a tunnel between two machines gets roughly twice this).
//
//   npx vitest bench --run bench/quic-throughput.bench.ts
//   QUIC_BENCH_MIB=500 QUIC_BENCH_WRITE=1300 QUIC_BENCH_UDP=1452 QUIC_BENCH_CC=bbr npx vitest bench --run bench/quic-throughput.bench.ts
//
// Prints Mbit/s per run; the tinybench table's timing is per 200 MiB transfer.

import { bench, describe } from 'vitest';
import { randomBytes } from 'node:crypto';
import { memoryLogger } from '../src/log/logger.js';
import { QuicEndpoint } from '../src/quic/endpoint.js';
import type { QuicConnection } from '../src/quic/connection.js';
import type { CongestionControl } from '../src/quic/tls.js';
import { makeIdentity } from '../test/helpers/quic-fixtures.js';

const totalBytes = Number(process.env.QUIC_BENCH_MIB ?? 200) * 1024 * 1024;
const writeSize = Number(process.env.QUIC_BENCH_WRITE ?? 1300);
const maxUdpPayload = Number(process.env.QUIC_BENCH_UDP ?? 1350);
const congestionControl = (process.env.QUIC_BENCH_CC ?? 'cubic') as CongestionControl;

async function transferOnce(): Promise<void> {
  const alice = makeIdentity('alice');
  const bob = makeIdentity('bob');
  const options = { listen: '127.0.0.1:0', logger: memoryLogger('bench', 'warn').logger, maxUdpPayload, congestionControl };
  const a = await QuicEndpoint.listen({ ...options, ...alice });
  const b = await QuicEndpoint.listen({ ...options, ...bob });
  try {
    const accepted = new Promise<QuicConnection>((resolve) => (b.onConnection = resolve));
    const client = a.connect(`127.0.0.1:${b.port}`);
    await new Promise<void>((resolve) => (client.onEstablished = resolve));
    const server = await accepted;

    const received = new Promise<number>((resolve) => {
      server.onStream = (stream) => {
        let length = 0;
        stream.onData = (chunk) => {
          length += chunk.byteLength;
        };
        stream.onEnd = () => resolve(length);
      };
    });
    const source = randomBytes(Math.max(writeSize, 64 * 1024));
    const stream = client.openStream();
    const started = performance.now();
    const cpuStarted = process.cpuUsage();
    let sent = 0;
    const pushMore = (): void => {
      while (sent < totalBytes) {
        const size = Math.min(writeSize, totalBytes - sent);
        const offset = sent % (source.length - size + 1);
        sent += size;
        if (!stream.write(source.subarray(offset, offset + size))) return;
      }
      stream.end();
    };
    stream.onDrain = pushMore;
    pushMore();
    const length = await received;
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuStarted);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    if (length !== totalBytes) throw new Error(`received ${length} of ${totalBytes} bytes`);
    const stats = client.stats();
    console.log(
      `quic loopback: ${(totalBytes / 1048576).toFixed(0)} MiB in ${seconds.toFixed(2)} s = ` +
        `${((totalBytes * 8) / seconds / 1e6).toFixed(0)} Mbit/s, ` +
        // On a shared machine wall time lies; bytes per CPU-second is the stable number.
        `${((totalBytes * 8) / cpuSeconds / 1e6).toFixed(0)} Mbit per CPU-second ` +
        `(write ${writeSize} B, udp ${maxUdpPayload} B, ${congestionControl}; ` +
        `packets sent ${stats.packetsSent}, lost ${stats.packetsLost}, rtt ${stats.rttMs} ms)`,
    );
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
}

describe('QUIC throughput', () => {
  bench(`one stream, ${totalBytes / 1048576} MiB over loopback`, transferOnce, { iterations: 3, warmupIterations: 0, time: 0 });
});
