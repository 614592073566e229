// `auto` overlay addresses are a hash of the fingerprint into the network prefix: two random
// nodes share one in a /24 with odds 1 in 254 (four nodes: 1 in 42), and the daemon then refuses
// the second one's route as a conflict (PROTOCOL.md). That was the suite's one-in-dozens flake:
// tests that make several nodes draw an identity again until its addresses are free.

import { deriveAutoAddress } from '../../src/config/address.js';
import { generateIdentity, type GeneratedIdentity } from '../../src/crypto/identity.js';
import { formatIp, parseCidr, type Prefix } from '../../src/netgraph/addr.js';

/** The networks tests put several nodes into with address = "auto". */
const TEST_NETWORKS: Array<[string, Prefix]> = [
  ['corp', '10.42.0.0/24'],
  ['lab', '10.43.0.0/24'],
  ['lab', '10.77.0.0/24'],
].map(([name, cidr]) => {
  const parsed = parseCidr(cidr!);
  if (!parsed.ok) throw new Error(parsed.error);
  return [name!, parsed.prefix];
});

/** Static addresses tests give nodes in those networks: an auto address must not take them either. */
const RESERVED = new Set([
  ...['1', '5', '7', '9', '77', '200'].map((h) => `corp 10.42.0.${h}`),
  ...['1', '2', '5', '9'].map((h) => `lab 10.43.0.${h}`),
  ...['1', '2', '3'].map((h) => `lab 10.77.0.${h}`),
]);

function addressesOf(fingerprint: string): string[] {
  return TEST_NETWORKS.map(([name, prefix]) => `${name} ${formatIp(deriveAutoAddress(name, prefix, fingerprint))}`);
}

/**
 * A new identity whose auto addresses in the test networks are not in `taken`; they are added to
 * it. The check and the add run without an await between them, so concurrent calls sharing one
 * set cannot both take an address.
 */
export async function distinctIdentity(
  name: string,
  taken: Set<string>,
  options?: Parameters<typeof generateIdentity>[1],
  /** Counts the identities drawn again, for a figure. */
  redraws?: { count: number },
): Promise<GeneratedIdentity> {
  for (;;) {
    const identity = await generateIdentity(name, options);
    const addresses = addressesOf(identity.fingerprint);
    if (addresses.some((a) => taken.has(a) || RESERVED.has(a))) {
      if (redraws) redraws.count++;
      continue;
    }
    for (const a of addresses) taken.add(a);
    return identity;
  }
}

/** Identities for `names` whose auto addresses are all distinct from each other (and the reserved ones). */
export async function distinctIdentities<const N extends readonly string[]>(
  names: N,
  options?: Parameters<typeof generateIdentity>[1],
): Promise<{ -readonly [K in keyof N]: GeneratedIdentity }> {
  const taken = new Set<string>();
  const made = await Promise.all(names.map((name) => distinctIdentity(name, taken, options)));
  return made as { -readonly [K in keyof N]: GeneratedIdentity };
}
