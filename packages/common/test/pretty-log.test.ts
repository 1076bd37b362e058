import { describe, expect, it } from 'vitest';
import { logFormat, prettyLine } from '../src/pretty-log.js';

describe('log format', () => {
  it('is pretty on a terminal in development, JSON in production, on pipes and when asked', () => {
    expect(logFormat({}, { isTTY: true })).toBe('pretty');
    expect(logFormat({ NODE_ENV: 'production' }, { isTTY: true })).toBe('json');
    expect(logFormat({}, { isTTY: false })).toBe('json');
    expect(logFormat({ LOG_FORMAT: 'json' }, { isTTY: true })).toBe('json');
    expect(logFormat({ LOG_FORMAT: 'pretty', NODE_ENV: 'production' }, {})).toBe('pretty');
  });

  it('prints time, level, service, message, fields and the stack of an error', () => {
    const line = JSON.stringify({
      level: 40,
      time: Date.UTC(2026, 0, 2, 3, 4, 5, 678),
      service: 'router',
      name: 'router',
      msg: 'subgraph fetch failed',
      subgraph: 'inventory',
      requestId: 'abc',
      err: { message: 'boom', stack: 'Error: boom\n    at here' },
    });
    expect(prettyLine(line, false)).toBe('03:04:05.678 WARN  router subgraph fetch failed subgraph=inventory requestId=abc\nError: boom\n    at here\n');
    expect(prettyLine('not json', false)).toBe('not json');
  });
});
