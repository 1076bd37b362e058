/**
 * The Vite dev server (hot reload) that `npm start` runs beside the rest: the app on PORT (default 5173), /graphql
 * proxied to ROUTER_URL over HTTP and WebSocket (see vite.config.ts). Stops on SIGTERM and SIGINT.
 */
import { createServer } from 'vite';
import { fileURLToPath } from 'node:url';

const server = await createServer({
  root: fileURLToPath(new URL('..', import.meta.url)),
  server: { port: Number(process.env.PORT ?? 5173) },
  logLevel: 'warn',
});
await server.listen();
process.stdout.write(`web app (Vite) on ${server.resolvedUrls?.local[0] ?? 'http://127.0.0.1:5173/'}\n`);
const stop = () => void server.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
