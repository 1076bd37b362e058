import http from 'node:http';
import https from 'node:https';

/** Response headers as the data sources read them: `get` and iteration, lower-case names. */
class ResponseHeaders {
  private readonly map = new Map<string, string>();

  constructor(headers: http.IncomingHttpHeaders) {
    for (const [name, value] of Object.entries(headers)) {
      if (value !== undefined) this.map.set(name, Array.isArray(value) ? value.join(', ') : value);
    }
  }

  get(name: string): string | null {
    return this.map.get(name.toLowerCase()) ?? null;
  }

  has(name: string): boolean {
    return this.map.has(name.toLowerCase());
  }

  forEach(fn: (value: string, name: string) => void): void {
    this.map.forEach(fn);
  }

  entries(): IterableIterator<[string, string]> {
    return this.map.entries();
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.map.entries();
  }
}

/** What the router's subgraph fetches need of a response: status, headers, the body as text or JSON. */
class HttpResponse {
  readonly ok: boolean;
  readonly headers: ResponseHeaders;

  constructor(
    readonly url: string,
    readonly status: number,
    readonly statusText: string,
    headers: http.IncomingHttpHeaders,
    private readonly body: string,
  ) {
    this.ok = status >= 200 && status < 300;
    this.headers = new ResponseHeaders(headers);
  }

  async text(): Promise<string> {
    return this.body;
  }

  async json(): Promise<unknown> {
    return JSON.parse(this.body);
  }
}

function headersOf(init: RequestInit | undefined): Record<string, string> {
  const given = init?.headers;
  if (!given) return {};
  if (given instanceof Headers) return Object.fromEntries(given);
  if (Array.isArray(given)) return Object.fromEntries(given);
  return { ...(given as Record<string, string>) };
}

/**
 * A `fetch` for subgraph calls on node:http keep-alive agents. Node's built-in
 * fetch (undici behind the WHATWG Request/Response/stream layers) was the
 * largest share of the router's CPU time per request in profiles (bench/); a
 * subgraph call needs none of those layers: a string body out, a string body
 * back. Supports what the router's data sources send: method, headers, a
 * string body, and an AbortSignal (deadlines).
 */
export function createHttpFetch(options: { maxSockets?: number } = {}): typeof fetch {
  const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? Infinity, scheduling: 'lifo' as const };
  const agents = { 'http:': new http.Agent(agentOptions), 'https:': new https.Agent(agentOptions) };
  const httpFetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> =>
    new Promise<Response>((resolve, reject) => {
      const url = typeof input === 'string' ? new URL(input) : input instanceof URL ? input : new URL(input.url);
      const protocol = url.protocol as keyof typeof agents;
      const agent = agents[protocol];
      if (!agent) {
        reject(new TypeError(`unsupported protocol ${url.protocol}`));
        return;
      }
      const body = init?.body;
      if (body != null && typeof body !== 'string') {
        reject(new TypeError('this fetch sends string bodies only'));
        return;
      }
      const headers = headersOf(init);
      if (body != null) headers['content-length'] = String(Buffer.byteLength(body));
      const request = (protocol === 'https:' ? https : http).request(url, {
        method: init?.method ?? 'GET',
        headers,
        agent,
        ...(init?.signal ? { signal: init.signal } : {}),
      });
      request.once('error', reject);
      request.once('response', (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.once('error', reject);
        response.once('end', () => {
          const text = chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8');
          const status = response.statusCode ?? 0;
          resolve(new HttpResponse(url.href, status, response.statusMessage ?? '', response.headers, text) as unknown as Response);
        });
      });
      request.end(body ?? undefined);
    });
  return httpFetch as typeof fetch;
}
