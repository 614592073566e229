import { describe, expect, it } from 'vitest';
import { AddressWatch, type LocalAddress } from '../../../src/daemon/local-addresses.js';

describe('AddressWatch', () => {
  it('reports a change of the underlay addresses once, and ignores the daemon’s own TUNs', () => {
    let addresses: LocalAddress[] = [{ interface: 'eth0', address: '192.0.2.5' }];
    const watch = new AddressWatch(() => addresses, (name) => name.startsWith('vpn-'));
    expect(watch.changed()).toBe(false);
    // A TUN coming up (start, reload) is not a move.
    addresses = [...addresses, { interface: 'vpn-corp', address: '10.42.0.7' }];
    expect(watch.changed()).toBe(false);
    // DHCP gave another address: a move, reported once.
    addresses = [{ interface: 'eth0', address: '192.0.2.77' }, { interface: 'vpn-corp', address: '10.42.0.7' }];
    expect(watch.changed()).toBe(true);
    expect(watch.changed()).toBe(false);
    // The order interfaces are listed in means nothing.
    addresses = [...addresses].reverse();
    expect(watch.changed()).toBe(false);
  });
});
