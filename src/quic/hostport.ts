// "host:port" text as used in the config (`listen`, peer `endpoint`): IPv4, hostname, or
// bracketed IPv6 ("[::1]:51820").

import { isIP } from 'node:net';

export interface HostPort {
  host: string;
  port: number;
}

export function parseHostPort(text: string): HostPort {
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || text[close + 1] !== ':') {
      throw new Error(`address "${text}" is not "[ipv6]:port"; write IPv6 addresses as [::1]:51820`);
    }
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    if (isIP(host) !== 6) throw new Error(`address "${text}": "${host}" is not an IPv6 address`);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon <= 0) throw new Error(`address "${text}" has no port; write it as host:port, e.g. 0.0.0.0:51820`);
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) {
      throw new Error(`address "${text}" looks like a bare IPv6 address; put it in brackets: [${host}]:${portText}`);
    }
  }
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 0 && port <= 65535)) throw new Error(`address "${text}": port "${portText}" is not 0..65535`);
  return { host, port };
}

export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
