import { describe, expect, it } from 'vitest';
import { Logger, formatLogLine, printable, shortFingerprint, singleLine, streamSink } from '../../../src/log/logger.js';

describe('logger', () => {
  it('writes the documented one-line format', () => {
    const line = formatLogLine(new Date('2026-11-22T10:00:00.123Z'), 'info', 'peer/manager', `connected to node2 (${shortFingerprint('1f3a'.repeat(16))})`);
    expect(line).toBe('[2026-11-22T10:00:00Z] INFO  [peer/manager] connected to node2 (1f3a1f3a…)');
    expect(formatLogLine(new Date(0), 'error', 'x', 'm')).toBe('[1970-01-01T00:00:00Z] ERROR [x] m');
  });

  it('filters by level, shared with children, and changes at run time', () => {
    const lines: string[] = [];
    const root = new Logger('daemon', { level: 'warn', sink: (l) => lines.push(l), clock: () => new Date(0) });
    const child = root.child('quic');
    child.info('hidden');
    child.warn('shown');
    root.setLevel('debug');
    child.debug('now shown');
    expect(lines).toEqual(['[1970-01-01T00:00:00Z] WARN  [quic] shown', '[1970-01-01T00:00:00Z] DEBUG [quic] now shown']);
  });

  it('keeps separate loggers separate (several daemons in one process)', () => {
    const a: string[] = [];
    const b: string[] = [];
    new Logger('a', { sink: (l) => a.push(l) }).info('to a');
    new Logger('b', { sink: (l) => b.push(l), level: 'error' }).info('not to b');
    expect(a).toHaveLength(1);
    expect(b).toHaveLength(0);
  });
});

describe('singleLine and printable', () => {
  it('write control characters as escapes, so one message is one log line', () => {
    expect(singleLine('a\nb\r\tc\u001b[31md\u2028')).toBe('a\\nb\\r\\tc\\u001b[31md\\u2028');
    expect(singleLine('plain text, ünïcode ok')).toBe('plain text, ünïcode ok');
    const line = formatLogLine(new Date(0), 'warn', 'control', 'protocol violation: name "x\n[1970-01-01T00:00:00Z] ERROR forged"');
    expect(line.split('\n')).toHaveLength(1);
    expect(printable('corp\n\u001b' + 'x'.repeat(100))).toBe(JSON.stringify('corp??' + 'x'.repeat(58) + '...'));
  });
});

describe('streamSink', () => {
  it('drops lines past the unread limit, then says how many once the stream drains', () => {
    const written: string[] = [];
    let queued = 0;
    let drain: (() => void) | null = null;
    const stream = {
      write: (text: string) => {
        written.push(text);
        queued += text.length;
        return true;
      },
      get writableLength() {
        return queued;
      },
      once: (_event: string, listener: () => void) => {
        drain = listener;
        return stream;
      },
    };
    const sink = streamSink(stream as unknown as Parameters<typeof streamSink>[0], 20);
    sink('first line');
    sink('second line');
    sink('third line');
    expect(written).toEqual(['first line\n', 'second line\n']);
    queued = 0;
    drain!();
    expect(written[2]).toMatch(/WARN {2}\[log\] 1 log line\(s\) dropped: the log reader was too slow\n$/);
    queued = 0;
    sink('fourth line');
    expect(written[3]).toBe('fourth line\n');
  });
});
