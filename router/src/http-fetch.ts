import http from 'node:http';
import https from 'node:https';
import { urlToHttpOptions } from 'node:url';

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
  // A router calls a handful of subgraph URLs: each is parsed once, not per call.
  const targets = new Map<string, { href: string; protocol: string; options: http.RequestOptions }>();
  const targetOf = (input: string | URL | Request) => {
    const key = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    let target = targets.get(key);
    if (!target) {
      const url = new URL(key);
      target = { href: url.href, protocol: url.protocol, options: urlToHttpOptions(url) };
      if (targets.size >= 64) targets.clear();
      targets.set(key, target);
    }
    return target;
  };
  const httpFetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> =>
    new Promise<Response>((resolve, reject) => {
      let target: ReturnType<typeof targetOf>;
      try {
        target = targetOf(input);
      } catch (error) {
        reject(error);
        return;
      }
      const protocol = target.protocol as keyof typeof agents;
      const agent = agents[protocol];
      if (!agent) {
        reject(new TypeError(`unsupported protocol ${target.protocol}`));
        return;
      }
      const body = init?.body;
      if (body != null && typeof body !== 'string') {
        reject(new TypeError('this fetch sends string bodies only'));
        return;
      }
      const signal = init?.signal ?? undefined;
      // As node:http does with its `signal` option, minus its per-request stream bookkeeping (about 2% of the
      // router's CPU per request): an abort destroys the request with an AbortError caused by the reason.
      if (signal?.aborted) {
        reject(abortError(signal));
        return;
      }
      const headers = headersOf(init);
      if (body != null) headers['content-length'] = String(Buffer.byteLength(body));
      const request = (protocol === 'https:' ? https : http).request({
        ...target.options,
        method: init?.method ?? 'GET',
        headers,
        agent,
      });
      if (signal) {
        const onAbort = () => request.destroy(abortError(signal));
        signal.addEventListener('abort', onAbort, { once: true });
        request.once('close', () => signal.removeEventListener('abort', onAbort));
      }
      request.once('error', reject);
      request.once('response', (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.once('error', reject);
        response.once('end', () => {
          const text = chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8');
          const status = response.statusCode ?? 0;
          resolve(new HttpResponse(target.href, status, response.statusMessage ?? '', response.headers, text) as unknown as Response);
        });
      });
      request.end(body ?? undefined);
    });
  return httpFetch as typeof fetch;
}

/** The error node:http gives a request whose signal aborted. */
function abortError(signal: AbortSignal): Error {
  const error = new Error('The operation was aborted', { cause: signal.reason });
  error.name = 'AbortError';
  (error as Error & { code: string }).code = 'ABORT_ERR';
  return error;
}
