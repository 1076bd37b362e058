import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

/** The router the dev server proxies /graphql to (HTTP and WebSocket); `npm start` sets it. */
const router = process.env.ROUTER_URL ?? 'http://127.0.0.1:4000';

export default defineConfig({
  plugins: [react()],
  server: {
    host: '127.0.0.1',
    port: Number(process.env.WEB_PORT ?? 5173),
    strictPort: true,
    proxy: { '/graphql': { target: router, ws: true, changeOrigin: false } },
  },
  // React, Apollo Client and graphql-js in one chunk: about 600 kB before gzip, for a demo app that is fine.
  build: { outDir: 'dist', sourcemap: true, chunkSizeWarningLimit: 1000 },
});
