// Kernel routes into one network's TUN, derived from its route table: every routed prefix that
// lies outside the network's own prefix (subnets other nodes export) needs a kernel route, the
// network prefix itself is on-link already. Applied as a desired set by diff, like Tailscale's
// router.Set(config): callers never count references or remember what they added.

import type { Logger } from '../log/logger.js';
import { formatPrefix, prefixCovers, type Prefix } from '../netgraph/addr.js';
import type { TunLike } from '../tun/types.js';

export class KernelRoutes {
  /** Installed routes by CIDR text. */
  private readonly installed = new Map<string, Prefix>();

  constructor(
    private readonly tun: TunLike,
    private readonly networkPrefix: Prefix,
    private readonly logger: Logger,
  ) {}

  /** Makes the kernel route exactly the prefixes in `routed` that lie outside the network prefix. */
  sync(routed: readonly Prefix[]): void {
    const desired = new Map<string, Prefix>();
    for (const prefix of routed) if (!prefixCovers(this.networkPrefix, prefix)) desired.set(formatPrefix(prefix), prefix);
    for (const [text, prefix] of [...this.installed]) {
      if (desired.has(text)) continue;
      this.installed.delete(text);
      try {
        this.tun.removeRoute(prefix);
      } catch (error) {
        this.logger.warn(`cannot remove route ${text} from ${this.tun.name}: ${(error as Error).message}`);
      }
    }
    for (const [text, prefix] of desired) {
      if (this.installed.has(text)) continue;
      try {
        this.tun.addRoute(prefix);
        this.installed.set(text, prefix);
      } catch (error) {
        // Not recorded: the next change retries it.
        this.logger.warn(`cannot route ${text} into ${this.tun.name}: ${(error as Error).message}`);
      }
    }
  }

  /** Prefixes currently routed into the TUN, for tests and diagnostics. */
  get routes(): string[] {
    return [...this.installed.keys()].sort();
  }
}
