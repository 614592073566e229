// describeRefusal: the dialing side's words for each reason a peer refuses its certificate.
import { describe, expect, it } from 'vitest';
import { describeRefusal } from '../../../src/peer/refusal.js';

const SELF = { name: 'beta', fingerprint: 'f'.repeat(64) };

describe('describeRefusal', () => {
  it('says who refused whom and what to run where, for every reason code', () => {
    expect(describeRefusal('alpha', 'unknown_fingerprint', SELF, ['corp', 'lab'])).toBe(
      `alpha refused our certificate: alpha has no peer entry for this node (on alpha: vpnctl add-peer --name beta --fingerprint ${SELF.fingerprint} --networks corp,lab)`,
    );
    expect(describeRefusal('alpha', 'pin_mismatch', SELF, [])).toBe(`alpha refused our certificate: alpha has another fingerprint pinned for beta; ours is ${SELF.fingerprint} (fix the pin in alpha's config)`);
    expect(describeRefusal('alpha', 'tofu_mismatch', SELF, [])).toMatch(/alpha learned another fingerprint for beta on first use; .*vpnctl forget beta/);
    expect(describeRefusal('alpha', 'cert_expired', SELF, [])).toMatch(/expired or not yet valid \(check this machine's clock/);
    expect(describeRefusal('alpha', 'cert_invalid', SELF, [])).toMatch(/cannot read it/);
    expect(describeRefusal('alpha', 'something_new', SELF, [])).toBe('alpha refused our certificate (something_new)');
    expect(describeRefusal('alpha', 'unknown_fingerprint', SELF, [])).toMatch(/--networks <networks>\)$/);
  });
});
