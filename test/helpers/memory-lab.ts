// Whole daemons on an in-memory network with a fake clock (daemon-memory.test.ts style), for the
// tests that run several of them for tens of seconds of daemon time: nodes at in-memory hosts,
// daemon time in 50 ms steps, and waiting on a condition with every node's log on failure.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeClock } from '../../src/clock/fake.js';
import type { Config } from '../../src/config/types.js';
import { DEFAULT_TIMING } from '../../src/peer/timing.js';
import { QuicEndpoint } from '../../src/quic/endpoint.js';
import { MemoryNetwork } from '../../src/quic/memory-network.js';
import { createNode, startNode, type TestNode } from './cluster.js';

export class MemoryLab {
  readonly root: string;
  readonly clock: FakeClock;
  readonly network = new MemoryNetwork();
  readonly nodes: TestNode[] = [];

  constructor(prefix: string, clock = new FakeClock()) {
    this.root = mkdtempSync(join(tmpdir(), prefix));
    this.clock = clock;
  }

  /** A node whose daemon will listen at `host`:51820 on the in-memory network. */
  async node(name: string, host: string, dirName = name): Promise<TestNode> {
    const node = await createNode(this.root, name, dirName);
    node.address = `${host}:51820`;
    this.nodes.push(node);
    return node;
  }

  start(node: TestNode, config: Config): Promise<unknown> {
    const host = node.address.slice(0, node.address.lastIndexOf(':'));
    return startNode(node, config, {
      clock: this.clock,
      timing: DEFAULT_TIMING,
      localAddresses: () => [{ interface: 'eth0', address: host }],
      endpointFactory: (options) => QuicEndpoint.listen({ ...options, socket: this.network.socket(host) }),
    });
  }

  /**
   * Daemon time in 50 ms steps (a liveness probe waits fractions of a second, and must see the
   * answer that the event loop carries meanwhile), with a little real time for QUIC's own timers.
   */
  async advance(seconds: number): Promise<void> {
    for (let step = 0; step < seconds * 20; step++) {
      this.clock.advance(50);
      for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
      if (step % 5 === 4) await new Promise((resolve) => setTimeout(resolve, 2));
    }
  }

  /** Seconds of daemon time until `condition` held; throws after `seconds` with the nodes' logs. */
  async until(condition: () => Promise<boolean>, what: string, seconds: number, logsOf: TestNode[] = this.nodes): Promise<number> {
    for (let s = 0; s < seconds; s++) {
      if (await condition()) return s;
      await this.advance(1);
    }
    if (await condition()) return seconds;
    throw new Error(`${what} not within ${seconds} s of daemon time\n${logsOf.map((n) => `--- ${n.name}\n${n.lines.slice(-80).join('\n')}`).join('\n')}`);
  }

  async destroy(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.daemon?.stop('test over')));
    rmSync(this.root, { recursive: true, force: true });
  }
}
