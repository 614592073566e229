import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkPeersAgainstIdentity, findSelfPeers, loadConfig } from '../../../src/config/load.js';
import { renderConfig } from '../../../src/config/write.js';
import { FILE, FP1, FP2, HOME, IDENTITY, INBOUND_ONLY_NEEDS_PIN, errorsOf, parse, withIdentity } from './parse-helpers.js';

describe('parseConfig: peer validation', () => {
  const NETWORKS = '\n[networks.corp]\nprefix = "10.42.0.0/24"\n';

  it('rejects duplicate names and fingerprints', () => {
    const errors = errorsOf(
      withIdentity(`[[peers]]
name = "node2"
fingerprint = "${FP1}"
networks = ["corp"]
[[peers]]
name = "node2"
fingerprint = "${FP1.toUpperCase()}"
networks = ["corp"]
${NETWORKS}`),
    );
    expect(errors).toEqual([
      `${FILE}:9: peers[1].name: duplicate peer name 'node2' (also used by peers[0])`,
      `${FILE}:10: peers[1].fingerprint: ${FP1} is already the fingerprint of peer 'node2'`,
    ]);
  });

  it('reads original = true (an original VibePN peer), which needs an address, and writes it back', () => {
    const config = parse(withIdentity(`[[peers]]\nname = "old"\naddress = "192.0.2.9:51820"\nfingerprint = "${FP1}"\nnetworks = ["corp"]\noriginal = true\n${NETWORKS}`));
    expect(config.peers[0]!.original).toBe(true);
    expect(renderConfig(config)).toContain('original = true');
    expect(parse(renderConfig(config)).peers[0]!.original).toBe(true);
    const errors = errorsOf(withIdentity(`[[peers]]\nname = "old"\nfingerprint = "${FP1}"\nnetworks = ["corp"]\noriginal = true\n${NETWORKS}`));
    expect(errors).toEqual([`${FILE}:8: peers[0].original: an original VibePN node must be dialed by this node (data sent on a connection it dialed is lost): give its address`]);
    expect(errorsOf(withIdentity(`[[peers]]\nname = "old"\naddress = "192.0.2.9:51820"\nnetworks = ["corp"]\noriginal = "yes"\n${NETWORKS}`))[0]).toContain(
      'peers[0].original: expected a boolean, got string',
    );
  });

  it('rejects malformed fingerprints', () => {
    const errors = errorsOf(withIdentity(`[[peers]]\nname = "a"\nfingerprint = "${FP1.slice(1)}"\nnetworks = ["corp"]\n${NETWORKS}`));
    expect(errors).toEqual([
      `${FILE}:6: peers[0].fingerprint: '${FP1.slice(1)}' is not a valid fingerprint (expected 64 hex digits, the SHA-256 of the DER certificate)`,
    ]);
    expect(errorsOf(withIdentity(`[[peers]]\nname = "a"\nfingerprint = "${'g'.repeat(64)}"\nnetworks = ["corp"]\n${NETWORKS}`))[0]).toContain(
      'is not a valid fingerprint',
    );
  });

  it('rejects unknown, missing and empty network lists', () => {
    const errors = errorsOf(
      withIdentity(`[[peers]]
name = "a"
networks = ["corp", "lab"]
address = "a:1"
[[peers]]
name = "b"
address = "b:1"
[[peers]]
name = "c"
networks = []
address = "c:1"
${NETWORKS}`),
    );
    expect(errors).toEqual([
      `${FILE}:6: peers[0].networks: unknown network 'lab' (configured networks: corp)`,
      `${FILE}:8: peers[1].networks: required key is missing (the networks this peer may announce routes for, e.g. networks = ["corp"])`,
      `${FILE}:13: peers[2].networks: must list at least one network`,
    ]);
    expect(errorsOf(withIdentity('[[peers]]\nname = "a"\nnetworks = ["corp"]\naddress = "a:1"\n'))).toEqual([
      `${FILE}:6: peers[0].networks: unknown network 'corp' (no [networks.NAME] sections are configured)`,
    ]);
  });

  it('requires a non-empty name and a dialable address', () => {
    const errors = errorsOf(
      withIdentity(`[[peers]]
networks = ["corp"]
address = "203.0.113.41:51820"
[[peers]]
name = ""
address = "203.0.113.42:0"
networks = ["corp"]
[[peers]]
name = "ok"
allowed_routes = ["10.0.0.1/8"]
networks = ["corp"]
address = "203.0.113.43:51820"
${NETWORKS}`),
    );
    expect(errors).toEqual([
      `${FILE}:4: peers[0].name: required key is missing (e.g. name = "node2")`,
      `${FILE}:8: peers[1].name: must not be empty (e.g. name = "node2")`,
      `${FILE}:9: peers[1].address: '203.0.113.42:0' is not a valid HOST:PORT (port must be a number 1..65535); use "" to only accept inbound connections`,
      `${FILE}:13: peers[2].allowed_routes[0]: '10.0.0.1/8' has host bits set (did you mean 10.0.0.0/8?)`,
    ]);
  });

  it('parses peer addresses; "" (or none) is inbound only', () => {
    const config = parse(
      withIdentity(`[[peers]]
name = "v6"
address = "[fd00::7]:51820"
networks = ["corp"]
[[peers]]
name = "inbound"
address = ""
fingerprint = "${FP1}"
networks = ["corp"]
${NETWORKS}`),
    );
    expect(config.peers.map((p) => p.address)).toStrictEqual([{ host: 'fd00::7', port: 51820 }, null]);
  });

  it('requires a fingerprint for an inbound-only peer, at its entry', () => {
    const errors = errorsOf(
      withIdentity(`[[peers]]
name = "laptop"
address = ""
networks = ["corp"]

[[peers]]
name = "phone"
networks = ["corp"]

[[peers]]
name = "tablet"
address = ""
fingerprint = ""
networks = ["corp"]
${NETWORKS}`),
    );
    expect(errors).toEqual([
      `${FILE}:4: peers[0].fingerprint: ${INBOUND_ONLY_NEEDS_PIN}`,
      `${FILE}:9: peers[1].fingerprint: ${INBOUND_ONLY_NEEDS_PIN}`,
      `${FILE}:16: peers[2].fingerprint: ${INBOUND_ONLY_NEEDS_PIN}`,
    ]);
    // A wrongly typed address is reported as such, not taken for "" and a missing pin.
    expect(errorsOf(withIdentity(`[[peers]]\nname = "a"\naddress = 51820\nnetworks = ["corp"]\n${NETWORKS}`))).toEqual([
      `${FILE}:6: peers[0].address: expected a string, got integer`,
    ]);
    // A malformed pin is reported as such, not as missing.
    expect(errorsOf(withIdentity(`[[peers]]\nname = "a"\naddress = ""\nfingerprint = "abc"\nnetworks = ["corp"]\n${NETWORKS}`))).toEqual([
      `${FILE}:7: peers[0].fingerprint: 'abc' is not a valid fingerprint (expected 64 hex digits, the SHA-256 of the DER certificate)`,
    ]);
    // A peer that is dialed may go unpinned: its key is learned from the connection to its address.
    expect(parse(withIdentity(`[[peers]]\nname = "a"\naddress = "a.example:1"\nnetworks = ["corp"]\n${NETWORKS}`)).peers[0]).not.toHaveProperty(
      'fingerprint',
    );
  });
});

describe('checkPeersAgainstIdentity', () => {
  const OWN = FP1;
  const text = withIdentity(`[[peers]]
name = "other"
address = "203.0.113.1:51820"
fingerprint = "${FP2}"
networks = ["corp"]

[[peers]]
name = "me"
address = "127.0.0.1:51820"
fingerprint = "${OWN.toUpperCase()}"
networks = ["corp"]

[networks.corp]
prefix = "10.42.0.0/24"
`);

  function writeTemp(content: string): string {
    const path = join(mkdtempSync(join(tmpdir(), 'vibepn-self-')), 'config.toml');
    writeFileSync(path, content);
    return path;
  }

  it('names each entry pinned to this node, with file, line and the fix', () => {
    const path = writeTemp(text);
    const config = loadConfig(path, { homeDir: HOME });
    const message =
      `${path}:13: peers[1].fingerprint: peer 'me' is pinned to this node's own fingerprint ${OWN}; ` +
      'a node cannot be its own peer (remove that [[peers]] entry)';
    expect(checkPeersAgainstIdentity(config, OWN)).toEqual([message]);
    expect(checkPeersAgainstIdentity(config, OWN.toUpperCase())).toEqual([message]);
    expect(findSelfPeers(config, OWN)).toEqual([{ index: 1, peer: config.peers[1], message }]);
  });

  it('is empty when no entry is this node', () => {
    const config = loadConfig(writeTemp(text), { homeDir: HOME });
    expect(checkPeersAgainstIdentity(config, 'c0de'.repeat(16))).toEqual([]);
  });

  it('leaves the line out when the file no longer matches what was loaded', () => {
    const path = writeTemp(text);
    const config = loadConfig(path, { homeDir: HOME });
    writeFileSync(path, IDENTITY);
    expect(checkPeersAgainstIdentity(config, OWN)).toEqual([
      `${path}: peers[1].fingerprint: peer 'me' is pinned to this node's own fingerprint ${OWN}; a node cannot be its own peer (remove that [[peers]] entry)`,
    ]);
  });
});
