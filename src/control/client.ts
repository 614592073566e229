// The vpnctl side of the local control API (PROTOCOL.md section 7): one request line out, one
// response line back. Errors are worded for the person at the terminal.

import net from 'node:net';

export class ControlRequestError extends Error {
  constructor(
    message: string,
    /** true when the daemon answered {"status":"error"}; false when it could not be reached or misbehaved. */
    readonly fromDaemon: boolean,
    /** The system error when connecting failed (ENOENT: no socket yet; ECONNREFUSED: nobody listening). */
    readonly code?: string,
  ) {
    super(message);
    this.name = 'ControlRequestError';
  }
}

export function controlRequest(socketPath: string, request: object, timeoutMs = 5000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    const received: Buffer[] = [];
    let settled = false;

    const finish = (error: ControlRequestError | undefined, output?: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(output);
    };

    const timer = setTimeout(
      () => finish(new ControlRequestError(`no answer from the vibepn daemon at ${socketPath} within ${timeoutMs} ms`, false)),
      timeoutMs,
    );

    socket.once('connect', () => socket.write(JSON.stringify(request) + '\n'));
    socket.on('error', (error: NodeJS.ErrnoException) => finish(describeConnectError(socketPath, error)));
    socket.on('data', (chunk: Buffer) => {
      const newline = chunk.indexOf(0x0a);
      if (newline === -1) {
        received.push(chunk);
        return;
      }
      received.push(chunk.subarray(0, newline));
      const line = Buffer.concat(received).toString('utf8');
      try {
        finish(undefined, parseResponse(socketPath, line));
      } catch (error) {
        finish(error as ControlRequestError);
      }
    });
    socket.on('end', () =>
      finish(new ControlRequestError(`the vibepn daemon at ${socketPath} closed the connection without answering`, false)),
    );
  });
}

function parseResponse(socketPath: string, line: string): unknown {
  let response: unknown;
  try {
    response = JSON.parse(line);
  } catch {
    throw new ControlRequestError(`the vibepn daemon at ${socketPath} sent a malformed response: ${line.slice(0, 200)}`, false);
  }
  const { status, output, error } = (response ?? {}) as { status?: unknown; output?: unknown; error?: unknown };
  if (status === 'ok') return output;
  if (status === 'error') throw new ControlRequestError(typeof error === 'string' ? error : JSON.stringify(error), true);
  throw new ControlRequestError(`the vibepn daemon at ${socketPath} sent a response without a status: ${line.slice(0, 200)}`, false);
}

function describeConnectError(socketPath: string, error: NodeJS.ErrnoException): ControlRequestError {
  const prefix = `cannot reach the vibepn daemon at ${socketPath}`;
  switch (error.code) {
    case 'ENOENT':
      return new ControlRequestError(`${prefix}: no such file (is \`vpn\` running? use --socket or --config to choose another)`, false, error.code);
    case 'EACCES':
    case 'EPERM':
      return new ControlRequestError(`${prefix}: permission denied (the socket is root-only; run vpnctl with sudo)`, false);
    case 'ECONNREFUSED':
      return new ControlRequestError(`${prefix}: connection refused (stale socket; is \`vpn\` running?)`, false, error.code);
    case 'ENOTSOCK':
      return new ControlRequestError(`${prefix}: not a socket (use --socket to choose the right path)`, false);
    default:
      return new ControlRequestError(`${prefix}: ${error.message}`, false);
  }
}
