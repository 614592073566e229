// Addresses for paths that are not UDP: a connection carried inside another node's sessions
// (a relay, PROTOCOL.md#v-relay) is an ordinary QUIC connection whose remote address is virtual.
// Its datagrams go to the endpoint's socket like any other, and the socket wrapper that owns the
// virtual paths (src/relay/relayed-socket.ts) carries them instead of the kernel. 0.0.0.0/8 is
// never a packet's source or destination on a real network (the kernel drops it as martian), so
// a virtual address cannot be confused with, or spoofed as, a real peer.

/** Virtual path ids are 1..VIRTUAL_PATH_MAX, the low 24 bits of 0.a.b.c. */
export const VIRTUAL_PATH_MAX = 0xffffff;
/** Every virtual path uses this port; the id is in the address. */
export const VIRTUAL_PORT = 1;
/**
 * The largest UDP payload of a connection on a virtual path: the QUIC minimum, so that the packet
 * fits, with the relay's 33-byte tag, in one DATAGRAM frame on a 1350-byte outer path.
 */
export const VIRTUAL_PATH_UDP_PAYLOAD = 1200;

/** The IPv4 form of a virtual path's address (an IPv6 endpoint sees it as ::ffff:0.a.b.c). */
export function virtualHost(id: number): string {
  if (!Number.isInteger(id) || id < 1 || id > VIRTUAL_PATH_MAX) throw new Error(`virtual path id ${id} is outside 1..${VIRTUAL_PATH_MAX}`);
  return `0.${(id >> 16) & 0xff}.${(id >> 8) & 0xff}.${id & 0xff}`;
}

export function isVirtualHost(host: string): boolean {
  return host.startsWith('0.') || host.startsWith('::ffff:0.');
}

/** The path id of a virtual address (either form), or null for any other host. */
export function virtualPathId(host: string): number | null {
  if (!isVirtualHost(host)) return null;
  const parts = (host.startsWith('::ffff:') ? host.slice(7) : host).split('.');
  if (parts.length !== 4 || parts[0] !== '0') return null;
  let id = 0;
  for (let i = 1; i < 4; i++) {
    const part = parts[i]!;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part) || Number(part) > 255) return null;
    id = (id << 8) | Number(part);
  }
  return id >= 1 ? id : null;
}
