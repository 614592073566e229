// This host's own IP addresses, watched so the daemon notices when it moved (DHCP renewal, a
// laptop joining another network) and can re-establish its paths at once instead of waiting for
// liveness timeouts. Polled once a tick: getifaddrs() is a cheap, non-blocking call. The
// daemon's own TUN interfaces are not the underlay: their addresses come and go with networks
// (start, reload) and never mean the host moved.

import { networkInterfaces } from 'node:os';

export interface LocalAddress {
  interface: string;
  address: string;
}

/** The host's non-loopback addresses with their interfaces; injectable so tests can move a daemon. */
export type LocalAddresses = () => readonly LocalAddress[];

export const systemAddresses: LocalAddresses = () =>
  Object.entries(networkInterfaces()).flatMap(([name, list]) =>
    (list ?? []).filter((entry) => !entry.internal).map((entry) => ({ interface: name, address: entry.address })),
  );

export class AddressWatch {
  private last: string;

  /** `ours(name)`: whether an interface is one of this daemon's TUNs. */
  constructor(
    private readonly read: LocalAddresses,
    private readonly ours: (interfaceName: string) => boolean,
  ) {
    this.last = this.signature();
  }

  /** True once per change of the set of underlay addresses. */
  changed(): boolean {
    const now = this.signature();
    if (now === this.last) return false;
    this.last = now;
    return true;
  }

  private signature(): string {
    return this.read()
      .filter((entry) => !this.ours(entry.interface))
      .map((entry) => entry.address)
      .sort()
      .join(' ');
  }
}
