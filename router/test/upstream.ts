import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/** What a test upstream does with a request. */
export type UpstreamMode =
  /** Forward to the target (or answer with the fixed body). */
  | 'answer'
  /** Read the request, then cut the connection without a response. */
  | 'drop'
  /** Never answer. */
  | 'hang'
  /** Answer 503. */
  | 'error'
  /** Answer with `refusal`: a status and a GraphQL body. */
  | 'refuse';

export interface Arrival {
  body: string;
  headers: IncomingHttpHeaders;
}

/**
 * A loopback HTTP server in front of a subgraph (or standing in for one) that counts the requests
 * reaching it and can drop, hang, fail or hold them: what a router sees of a sick subgraph.
 */
export interface Upstream {
  url: string;
  arrivals: Arrival[];
  mode: UpstreamMode;
  refusal: { status: number; body: unknown };
  /** Requests to answer wait until `release()`. */
  hold(): void;
  release(): void;
  /** Resolves once `count` requests have arrived in all. */
  arrived(count: number): Promise<void>;
  /** Cuts every open connection (pooled ones too), so the next request needs a new one. */
  cutConnections(): void;
  close(): Promise<void>;
}

/** `target` is a URL to forward to, or a fixed JSON answer. */
export async function startUpstream(target: string | { json: unknown }): Promise<Upstream> {
  const arrivals: Arrival[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  const sockets = new Set<Socket>();
  let gate: Promise<void> | undefined;
  let open: (() => void) | undefined;

  const answer = async (res: ServerResponse, body: string, headers: IncomingHttpHeaders) => {
    await gate;
    if (typeof target !== 'string') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(target.json));
      return;
    }
    const forwarded: Record<string, string> = {};
    for (const [name, value] of Object.entries(headers)) {
      if (typeof value === 'string' && !['host', 'connection', 'content-length'].includes(name)) forwarded[name] = value;
    }
    const response = await fetch(target, { method: 'POST', headers: forwarded, body });
    res.statusCode = response.status;
    res.setHeader('content-type', response.headers.get('content-type') ?? 'application/json');
    res.end(await response.text());
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      arrivals.push({ body, headers: req.headers });
      for (const waiter of [...waiters]) {
        if (arrivals.length >= waiter.count) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve();
        }
      }
      if (upstream.mode === 'drop') req.socket.destroy();
      else if (upstream.mode === 'error') res.writeHead(503, { 'content-type': 'text/plain' }).end('unavailable');
      else if (upstream.mode === 'refuse') {
        res.writeHead(upstream.refusal.status, { 'content-type': 'application/json' }).end(JSON.stringify(upstream.refusal.body));
      }
      else if (upstream.mode === 'answer') {
        answer(res, body, req.headers).catch(() => {
          if (!res.headersSent) res.writeHead(502).end();
          else res.destroy();
        });
      }
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const upstream: Upstream = {
    url: `http://127.0.0.1:${port}/graphql`,
    arrivals,
    mode: 'answer',
    refusal: { status: 400, body: { errors: [{ message: 'refused' }] } },
    hold() {
      gate ??= new Promise((resolve) => (open = resolve));
    },
    release() {
      open?.();
      gate = undefined;
      open = undefined;
    },
    arrived(count) {
      if (arrivals.length >= count) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ count, resolve }));
    },
    cutConnections() {
      for (const socket of sockets) socket.destroy();
    },
    async close() {
      upstream.release();
      upstream.cutConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return upstream;
}
