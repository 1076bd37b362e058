import type { ServerResponse } from 'node:http';

/**
 * The HTTP requests a process is answering, so a graceful stop can wait for them before it takes
 * away what they use (Apollo Server, Redis). While draining, every response asks the client to close
 * its connection, so no new request arrives on a kept-alive one.
 */
export class InFlightRequests {
  private readonly open = new Set<ServerResponse>();
  private draining = false;
  private onIdle: (() => void) | undefined;

  get size(): number {
    return this.open.size;
  }

  track(res: ServerResponse): void {
    if (this.draining) res.setHeader('connection', 'close');
    this.open.add(res);
    res.once('close', () => {
      this.open.delete(res);
      if (this.open.size === 0) this.onIdle?.();
    });
  }

  /** Resolves once every request has been answered, or after `graceMs` with whatever is left. */
  async drain(graceMs: number): Promise<void> {
    this.draining = true;
    for (const res of this.open) if (!res.headersSent) res.setHeader('connection', 'close');
    if (this.open.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.onIdle = resolve;
      timer = setTimeout(resolve, graceMs);
    });
    clearTimeout(timer);
    this.onIdle = undefined;
  }
}
