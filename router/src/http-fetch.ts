import { STATUS_CODES, type IncomingHttpHeaders } from 'node:http';
import { Agent, request } from 'undici';
/** Response headers as the data sources read them: `get` and iteration, lower-case names. */
class ResponseHeaders {
  private readonly map = new Map<string, string>();

  constructor(headers: IncomingHttpHeaders) {
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
    headers: IncomingHttpHeaders,
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
  return given as Record<string, string>;
}

/**
 * A `fetch` for subgraph calls on undici's request API over a keep-alive connection pool. Node's built-in
 * fetch (undici behind the WHATWG Request/Response/stream layers) was the largest share of the router's CPU
 * time per request in profiles (bench/), and `node:http`'s client, which replaced it first, still cost about
 * 40% more CPU per call than undici's `request` in a loopback comparison. A subgraph call needs none of the
 * WHATWG layers: a string body out, a string body back. Supports what the router's data sources send:
 * method, headers, a string body, and an AbortSignal (deadlines).
 */
export function createHttpFetch(options: { maxSockets?: number } = {}): typeof fetch {
  const dispatcher = new Agent({ connections: options.maxSockets ?? null, keepAliveTimeout: 30_000 });
  const httpFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const body = init?.body;
    if (body != null && typeof body !== 'string') throw new TypeError('this fetch sends string bodies only');
    const response = await request(url, {
      method: (init?.method ?? 'GET') as 'GET',
      headers: headersOf(init),
      body: body ?? undefined,
      signal: init?.signal ?? undefined,
      dispatcher,
    });
    const text = await response.body.text();
    const status = response.statusCode;
    return new HttpResponse(url, status, STATUS_CODES[status] ?? '', response.headers, text) as unknown as Response;
  };
  return httpFetch as typeof fetch;
}
