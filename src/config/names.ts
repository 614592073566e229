// Network names, one rule for every place that accepts one (config sections, invites). A name
// becomes a TOML table key, part of the auto-address hash and of the default TUN name, so a
// name an invite lets through but the loader refuses would leave `vpnctl join` writing a config
// the daemon cannot start with.

const NETWORK_NAME_RE = /^[A-Za-z0-9_.-]{1,255}$/;

/** Why `name` cannot name a network, or null if it can. */
export function networkNameProblem(name: string): string | null {
  return NETWORK_NAME_RE.test(name) ? null : `'${name}' is not a valid network name (1..255 characters from A-Z a-z 0-9 _ . -)`;
}
