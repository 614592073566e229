import { describe, expect, it } from 'vitest';
import { FILE, errorsOf, parse, withIdentity } from './parse-helpers.js';

describe('parseConfig: network validation', () => {
  function networkErrors(body: string): string[] {
    return errorsOf(withIdentity(body));
  }

  it('rejects invalid CIDRs and host bits', () => {
    expect(networkErrors('[networks.corp]\nprefix = "10.42.0.0/33"\n')).toEqual([
      `${FILE}:5: networks.corp.prefix: '10.42.0.0/33' is not a valid CIDR (prefix length must be 0..32)`,
    ]);
    expect(networkErrors('[networks.corp]\nprefix = "10.42.0.5/24"\n')).toEqual([
      `${FILE}:5: networks.corp.prefix: '10.42.0.5/24' has host bits set (did you mean 10.42.0.0/24?)`,
    ]);
    expect(networkErrors('[networks.corp]\naddress = "auto"\n')).toEqual([
      `${FILE}:4: networks.corp.prefix: required key is missing (e.g. prefix = "10.42.0.0/24")`,
    ]);
  });

  it.each([
    ['10.42.1.5', `'10.42.1.5' is outside prefix 10.42.0.0/24`],
    ['10.42.0.0', `'10.42.0.0' is the network address of 10.42.0.0/24; use a host address or "auto"`],
    ['10.42.0.255', `'10.42.0.255' is the broadcast address of 10.42.0.0/24; use a host address or "auto"`],
    ['fd00::1', `'fd00::1' is an IPv6 address but prefix 10.42.0.0/24 is IPv4`],
    ['10.42.0', `'10.42.0' is not an IP address (use an address inside the prefix, or "auto")`],
  ])('rejects address = %s', (address, message) => {
    expect(networkErrors(`[networks.corp]\nprefix = "10.42.0.0/24"\naddress = "${address}"\n`)).toEqual([
      `${FILE}:6: networks.corp.address: ${message}`,
    ]);
  });

  it('rejects the IPv6 network (subnet-router anycast) address', () => {
    expect(networkErrors('[networks.v6]\nprefix = "fd00::/64"\naddress = "fd00::"\n')).toEqual([
      `${FILE}:6: networks.v6.address: 'fd00::' is the network address of fd00::/64; use a host address or "auto"`,
    ]);
  });

  it('rejects overlapping prefixes, naming both networks', () => {
    expect(
      networkErrors(`[networks.corp]
prefix = "10.42.0.0/24"
[networks.lab]
prefix = "10.0.0.0/8"
[networks.v6a]
prefix = "fd00::/48"
[networks.v6b]
prefix = "fd00:0:0:1::/64"
`),
    ).toEqual([
      `${FILE}:7: networks.lab.prefix: 10.0.0.0/8 overlaps 10.42.0.0/24 of network 'corp' (network prefixes must not overlap)`,
      `${FILE}:11: networks.v6b.prefix: fd00:0:0:1::/64 overlaps fd00::/48 of network 'v6a' (network prefixes must not overlap)`,
    ]);
  });

  it('rejects bad and duplicate interface names', () => {
    expect(
      networkErrors(`[networks.a]
prefix = "10.1.0.0/24"
interface = "vpn-much-too-long"
[networks.b]
prefix = "10.2.0.0/24"
interface = "vpn b"
[networks.c]
prefix = "10.3.0.0/24"
interface = "vpn0"
[networks.d]
prefix = "10.4.0.0/24"
interface = "vpn0"
`),
    ).toEqual([
      `${FILE}:6: networks.a.interface: 'vpn-much-too-long' is not a valid interface name: it is longer than 15 bytes (or remove the line to derive one from the network name)`,
      `${FILE}:9: networks.b.interface: 'vpn b' is not a valid interface name: it may only contain letters, digits, "_", "." and "-" (or remove the line to derive one from the network name)`,
      `${FILE}:15: networks.d.interface: 'vpn0' is already used by network 'c'`,
    ]);
    // The TUN layer's own rule (src/tun/name.ts): bytes, not characters, and "." / ".." are refused.
    expect(networkErrors('[networks.a]\nprefix = "10.1.0.0/24"\ninterface = "vpn-ééééééé"\n')).toEqual([
      `${FILE}:6: networks.a.interface: 'vpn-ééééééé' is not a valid interface name: it is longer than 15 bytes (or remove the line to derive one from the network name)`,
    ]);
    expect(networkErrors('[networks.a]\nprefix = "10.1.0.0/24"\ninterface = ".."\n')).toEqual([
      `${FILE}:6: networks.a.interface: '..' is not a valid interface name: it is not allowed (or remove the line to derive one from the network name)`,
    ]);
  });

  it('accepts interface names the TUN layer accepts, "%" included, and 15 bytes exactly', () => {
    const config = parse(
      withIdentity('[networks.a]\nprefix = "10.1.0.0/24"\ninterface = "vpn%a"\n[networks.b]\nprefix = "10.2.0.0/24"\ninterface = "vpn-fifteen-chr"\n'),
    );
    expect(config.networks.get('a')!.interface).toBe('vpn%a');
    expect(config.networks.get('b')!.interface).toBe('vpn-fifteen-chr');
  });

  it('rejects bad network names', () => {
    expect(networkErrors('[networks."corp net"]\nprefix = "10.1.0.0/24"\n')).toEqual([
      `${FILE}:4: networks."corp net": 'corp net' is not a valid network name (1..255 characters from A-Z a-z 0-9 _ . -)`,
    ]);
    const long = 'n'.repeat(256);
    expect(networkErrors(`[networks.${long}]\nprefix = "10.1.0.0/24"\n`)[0]).toContain(`'${long}' is not a valid network name`);
    expect(parse(withIdentity(`[networks."${'n'.repeat(255)}"]\nprefix = "10.1.0.0/24"\n`)).networks.size).toBe(1);
  });

  it('checks the MTU range per family', () => {
    expect(networkErrors('[networks.a]\nprefix = "10.1.0.0/24"\nmtu = 575\n')).toEqual([
      `${FILE}:6: networks.a.mtu: 575 is out of range (576..65535 for IPv4 networks)`,
    ]);
    expect(networkErrors('[networks.a]\nprefix = "fd00::/64"\nmtu = 1000\n')).toEqual([
      `${FILE}:6: networks.a.mtu: 1000 is out of range (1280..65535 for IPv6 networks)`,
    ]);
    expect(networkErrors('[networks.a]\nprefix = "10.1.0.0/24"\nmtu = 65536\n')).toEqual([
      `${FILE}:6: networks.a.mtu: 65536 is out of range (576..65535 for IPv4 networks)`,
    ]);
    expect(parse(withIdentity('[networks.a]\nprefix = "10.1.0.0/24"\nmtu = 576\n')).networks.get('a')!.mtu).toBe(576);
  });

  it('rejects invalid route CIDRs', () => {
    expect(networkErrors('[networks.a]\nprefix = "10.1.0.0/24"\nroutes = ["192.168.50.0/24", "192.168.50.1"]\n')).toEqual([
      `${FILE}:6: networks.a.routes[1]: '192.168.50.1' is not a valid CIDR (expected ADDRESS/LENGTH, e.g. 10.42.0.0/24)`,
    ]);
  });

  it('does not report a peer network as unknown when the network itself is invalid', () => {
    expect(errorsOf(withIdentity('[[peers]]\nname = "a"\naddress = "a:1"\nnetworks = ["x"]\n[networks.x]\nprefix = "bad"\n'))).toEqual([
      `${FILE}:9: networks.x.prefix: 'bad' is not a valid CIDR (expected ADDRESS/LENGTH, e.g. 10.42.0.0/24)`,
    ]);
  });
});
