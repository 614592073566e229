// "host:port" endpoints as written in the config (daemon.listen, daemon.metrics_listen,
// peers.address) and on the vpnctl command line. One parser so the loader, the CLI and the
// dialer agree on what "[fd00::1]:51820" means; everything past the loader holds a HostPort.

import { parseIPv4, parseIPv6 } from '../netgraph/addr.js';

export interface HostPort {
  /** IP literal (IPv6 without brackets), hostname, or "" for "all interfaces". */
  host: string;
  port: number;
}

export interface HostPortOptions {
  /** Accept ":9000" meaning every interface (metrics_listen). */
  allowEmptyHost?: boolean;
  /** Accept port 0 = pick an ephemeral port (listen sockets; handy in tests). */
  allowPortZero?: boolean;
}

export type HostPortResult = ({ ok: true } & HostPort) | { ok: false; error: string };

const HOSTNAME_LABEL_RE = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

export function parseHostPort(text: string, options: HostPortOptions = {}): HostPortResult {
  const fail = (why: string): HostPortResult => ({ ok: false, error: `'${text}' is not a valid HOST:PORT (${why})` });
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || text[close + 1] !== ':') return fail('expected [IPv6]:PORT, e.g. [fd00::1]:51820');
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    if (!parseIPv6(host)) return fail(`'${host}' is not an IPv6 address`);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) return fail('missing :PORT, e.g. 203.0.113.42:51820');
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) return fail(`IPv6 addresses need brackets, e.g. [${host}]:${portText}`);
    const hostError = checkHost(host, options.allowEmptyHost ?? false);
    if (hostError) return fail(hostError);
  }
  const minPort = options.allowPortZero ? 0 : 1;
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < minPort || Number(portText) > 65535) {
    return fail(`port must be a number ${minPort}..65535`);
  }
  return { ok: true, host, port: Number(portText) };
}

function checkHost(host: string, allowEmpty: boolean): string | null {
  if (host === '') return allowEmpty ? null : 'missing host, e.g. 0.0.0.0:51820';
  // All digits and dots can only be meant as IPv4; don't let "999.1.1.1" pass as a hostname.
  if (/^[\d.]+$/.test(host)) return parseIPv4(host) ? null : `'${host}' is not an IPv4 address`;
  const name = host.endsWith('.') ? host.slice(0, -1) : host;
  if (name.length > 253 || !name.split('.').every((label) => HOSTNAME_LABEL_RE.test(label))) {
    return `'${host}' is not an IP address or hostname`;
  }
  return null;
}

/**
 * Why a HostPort built in code breaks the rules parseHostPort applies to text, or null. For
 * layers that take typed endpoints (the QUIC endpoint) and must not re-parse text.
 */
export function hostPortProblem(value: HostPort, options: HostPortOptions = {}): string | null {
  const shown = formatHostPort(value.host, value.port);
  const why = value.host.includes(':')
    ? parseIPv6(value.host)
      ? null
      : `'${value.host}' is not an IPv6 address`
    : checkHost(value.host, options.allowEmptyHost ?? false);
  if (why) return `'${shown}' is not a valid HOST:PORT (${why})`;
  const minPort = options.allowPortZero ? 0 : 1;
  if (!Number.isInteger(value.port) || value.port < minPort || value.port > 65535) {
    return `'${shown}' is not a valid HOST:PORT (port must be a number ${minPort}..65535)`;
  }
  return null;
}

/** "host:port", with brackets around an IPv6 host. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
