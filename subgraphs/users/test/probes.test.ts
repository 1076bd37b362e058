import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, type Listening } from '@shop/common';
import { serveProbes } from '../src/notifications/probes.js';

const lines: Record<string, unknown>[] = [];
const log = createLogger('probes-test', 'warn', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
const opened: (Listening | Server)[] = [];

afterEach(async () => {
  for (const server of opened.splice(0)) {
    await ('url' in server ? server.close(100) : new Promise((resolve) => server.close(resolve)));
  }
  lines.length = 0;
});

/** A port some other process holds. */
async function taken(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  opened.push(server);
  return (server.address() as { port: number }).port;
}

const checks = { database: async () => undefined, redis: async () => Promise.reject(new Error('connection refused')) };

describe('worker probes', () => {
  it('answer /health, /ready naming the failing check, /metrics, and 404 elsewhere', async () => {
    const http = await serveProbes(checks, { host: '127.0.0.1', port: 0 }, log);
    opened.push(http);
    const base = `http://127.0.0.1:${http.port}`;
    expect(await (await fetch(`${base}/health`)).json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${base}/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ status: 'unavailable', checks: { database: 'ok', redis: 'connection refused' } });
    expect((await fetch(`${base}/metrics`)).status).toBe(200);
    expect((await fetch(`${base}/graphql`)).status).toBe(404);
  });

  it('without PORT, move to a free port when the default is taken (another worker on the machine), and say so', async () => {
    const port = await taken();
    const http = await serveProbes(checks, { host: '127.0.0.1', port: undefined }, log, port);
    opened.push(http);
    expect(http.port).not.toBe(port);
    expect(http.port).toBeGreaterThan(0);
    expect(lines).toContainEqual(expect.objectContaining({ level: 40, port, msg: expect.stringMatching(/probe port in use/) }));
  });

  it('with PORT, fail when it is taken: the kubelet probes that port', async () => {
    const port = await taken();
    await expect(serveProbes(checks, { host: '127.0.0.1', port }, log)).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });
});
