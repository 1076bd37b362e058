import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { applyCors } from '../src/http.js';
import { readServiceConfig } from '../src/config.js';

/** The CORS headers an origin gets, as applyCors sets them. */
function corsFor(origin: string, origins: readonly string[], allowLocal: boolean): Record<string, string> {
  const headers: Record<string, string> = {};
  const res = { setHeader: (name: string, value: string) => (headers[name] = value) } as unknown as ServerResponse;
  applyCors({ headers: { origin }, method: 'POST' } as IncomingMessage, res, origins, allowLocal);
  return headers;
}

describe('CORS', () => {
  it('lets no local origin in, with credentials, in production, even when CORS_ORIGINS is set', () => {
    const production = readServiceConfig({ NODE_ENV: 'production', CORS_ORIGINS: 'https://shop.example' }, 4000);
    for (const origin of ['http://localhost:3000', 'http://127.0.0.1:8080', 'https://[::1]']) {
      expect(corsFor(origin, production.corsOrigins, !production.production)).toEqual({});
    }
    expect(corsFor('https://shop.example', production.corsOrigins, false)).toMatchObject({
      'access-control-allow-origin': 'https://shop.example',
      'access-control-allow-credentials': 'true',
    });
    expect(corsFor('https://evil.example', production.corsOrigins, false)).toEqual({});
  });

  it('lets local pages in during development', () => {
    const development = readServiceConfig({}, 4000);
    expect(corsFor('http://localhost:5173', development.corsOrigins, !development.production)).toMatchObject({
      'access-control-allow-origin': 'http://localhost:5173',
    });
    expect(corsFor('http://localhost.evil.example', development.corsOrigins, true)).toEqual({});
  });
});
