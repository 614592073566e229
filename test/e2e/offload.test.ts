// End to end: TUN offloads and TCP super-segments on the wire (PROTOCOL.md#v-super-segments) with
// real daemons, real TUNs and the kernel's own TSO. Two nodes with offloads carry super-segments
// whole; a node with `offload = false` sends no C message, exactly as a node that predates the
// extension, and must get ordinary packets from both, with every byte intact either way.
import { describe, expect, it } from 'vitest';
import { netnsUnavailable } from '../helpers/netns.js';
import { Mesh, METRICS_PORT, overlay, waitFor, type MeshNode } from '../helpers/netns-mesh.js';
import { sample, scrape, tcpTransfer } from '../helpers/traffic.js';

const skip = netnsUnavailable();
const MB = 1024 * 1024;

function superSegments(node: MeshNode, direction: 'in' | 'out'): number {
  return sample(scrape(node.host.ns, METRICS_PORT), 'vibepn_forward_super_segments_total', 'network="corp"', `direction="${direction}"`);
}

describe.skipIf(skip !== null)(`TCP super-segments between real daemons${skip ? ` (skipped: ${skip})` : ''}`, () => {
  it('go whole between nodes that offer them, and as ordinary packets to and from one that does not', async () => {
    const m = new Mesh();
    try {
      const [a, b, old] = (await m.addNodes(3)) as [MeshNode, MeshNode, MeshNode];
      for (const node of [a, b, old]) {
        const others = [a, b, old].filter((n) => n !== node).map((n) => m.peer(n));
        m.configure(node, others, undefined, node === old ? { offload: false } : {});
        await m.start(node);
      }
      const ready = await waitFor(async () => (await Promise.all([a, b, old].map((n) => m.routes(n)))).every((r) => r?.length === 2), 20_000);
      if (ready === null) throw new Error(`the mesh did not form:\n${m.allLogs()}`);

      // Both offer: the sender's kernel TSO super-segments cross the tunnel as one frame each.
      const ab = await tcpTransfer(a.host.ns, b.host.ns, overlay(b), 20 * MB);
      expect(ab.received).toBe(ab.sent);
      const ba = await tcpTransfer(b.host.ns, a.host.ns, overlay(a), 20 * MB, 5202);
      expect(ba.received).toBe(ba.sent);
      const sentWhole = superSegments(a, 'out');
      expect(sentWhole).toBeGreaterThan(0);
      expect(superSegments(b, 'in')).toBeGreaterThan(0);
      expect(superSegments(b, 'out')).toBeGreaterThan(0);

      // The node without offloads: cut up on the sender's side, nothing whole reaches it.
      const toOld = await tcpTransfer(a.host.ns, old.host.ns, overlay(old), 20 * MB, 5203);
      expect(toOld.received).toBe(toOld.sent);
      const fromOld = await tcpTransfer(old.host.ns, a.host.ns, overlay(a), 20 * MB, 5204);
      expect(fromOld.received).toBe(fromOld.sent);
      expect(superSegments(a, 'out')).toBe(sentWhole);
      expect(superSegments(old, 'in')).toBe(0);
      expect(superSegments(old, 'out')).toBe(0);
    } finally {
      await m.destroy();
    }
  }, 180_000);
});
