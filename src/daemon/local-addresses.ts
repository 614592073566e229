// This host's own IP addresses, watched so the daemon notices when it moved (DHCP renewal, a
// laptop joining another network) and can re-establish its paths at once instead of waiting for
// liveness timeouts. Polled once a tick: getifaddrs() is a cheap, non-blocking call.

import { networkInterfaces } from 'node:os';

/** The host's non-loopback addresses; injectable so tests can move a daemon. */
export type LocalAddresses = () => readonly string[];

export const systemAddresses: LocalAddresses = () =>
  Object.values(networkInterfaces())
    .flatMap((list) => list ?? [])
    .filter((entry) => !entry.internal)
    .map((entry) => entry.address);

export class AddressWatch {
  private last: string;

  constructor(private readonly read: LocalAddresses) {
    this.last = this.signature();
  }

  /** True once per change of the set of addresses. */
  changed(): boolean {
    const now = this.signature();
    if (now === this.last) return false;
    this.last = now;
    return true;
  }

  private signature(): string {
    return [...this.read()].sort().join(' ');
  }
}
