# One image for every service of the shop; the command picks which one runs (docker-compose.yml):
#   node router/dist/main.js                  the router (default)
#   node subgraphs/<name>/dist/main.js        a subgraph: users, products, orders, inventory
#   node subgraphs/users/dist/worker-main.js  the notification worker
#   node dashboard/dist/main.js               Bull Board for operators
#   node scripts/dist/migrate.js              migrations of every subgraph (each subgraph also migrates at start)
#   node subgraphs/users/dist/create-admin.js the first administrator
# Compiled JavaScript only: no TypeScript loader and no devDependencies at run time.
#
# The Node base is a build argument: the current LTS by default; the code also runs on Node 20
# (`--build-arg NODE_IMAGE=node:20-bookworm-slim`, as the container test does).
ARG NODE_IMAGE=node:26-slim

# Every workspace's package.json (npm ci checks the lockfile against all of them), then all dependencies, dev included.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/common/package.json packages/common/
COPY subgraphs/users/package.json subgraphs/users/
COPY subgraphs/products/package.json subgraphs/products/
COPY subgraphs/orders/package.json subgraphs/orders/
COPY subgraphs/inventory/package.json subgraphs/inventory/
COPY router/package.json router/
COPY dashboard/package.json dashboard/
COPY web/package.json web/
RUN npm ci --no-audit --no-fund

# tsc: each server package's src/ to its dist/, scripts/migrate.ts to scripts/dist/ (`npm run build`).
FROM deps AS build
COPY tsconfig.json tsconfig.build.json ./
COPY packages packages
COPY subgraphs subgraphs
COPY router router
COPY dashboard dashboard
COPY scripts scripts
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
# shop-dist: the workspace packages' exports resolve to their compiled dist/ rather than to src/*.ts.
ENV NODE_ENV=production \
    NODE_OPTIONS=--conditions=shop-dist \
    HOST=0.0.0.0 \
    PORT=4000
WORKDIR /app
COPY --from=deps /app/package.json /app/package-lock.json ./
COPY --from=deps /app/packages/common/package.json packages/common/
COPY --from=deps /app/subgraphs/users/package.json subgraphs/users/
COPY --from=deps /app/subgraphs/products/package.json subgraphs/products/
COPY --from=deps /app/subgraphs/orders/package.json subgraphs/orders/
COPY --from=deps /app/subgraphs/inventory/package.json subgraphs/inventory/
COPY --from=deps /app/router/package.json router/
COPY --from=deps /app/dashboard/package.json dashboard/
COPY --from=deps /app/web/package.json web/
# Production dependencies of the server workspaces only (the web app is served elsewhere), nested node_modules
# included (npm puts packages/common's @opentelemetry 2.x there). Optional ones are left out: TypeScript (23 MB, an
# optional peer of @bull-board/api's valibot), msgpackr's native accelerator (it falls back to JavaScript) and
# pg's Cloudflare socket.
RUN npm ci --omit=dev --omit=optional --no-audit --no-fund \
      --workspace=packages/common --workspace=subgraphs/users --workspace=subgraphs/products \
      --workspace=subgraphs/orders --workspace=subgraphs/inventory --workspace=router --workspace=dashboard \
    && npm cache clean --force
COPY --from=build /app/packages/common/dist packages/common/dist
COPY --from=build /app/subgraphs/users/dist subgraphs/users/dist
COPY --from=build /app/subgraphs/products/dist subgraphs/products/dist
COPY --from=build /app/subgraphs/orders/dist subgraphs/orders/dist
COPY --from=build /app/subgraphs/inventory/dist subgraphs/inventory/dist
COPY --from=build /app/router/dist router/dist
COPY --from=build /app/dashboard/dist dashboard/dist
COPY --from=build /app/scripts/dist scripts/dist
# Read at run time from the package roots: each subgraph's migrations and the router's composed supergraph.
COPY subgraphs/users/migrations subgraphs/users/migrations
COPY subgraphs/products/migrations subgraphs/products/migrations
COPY subgraphs/orders/migrations subgraphs/orders/migrations
COPY subgraphs/inventory/migrations subgraphs/inventory/migrations
COPY schema/supergraph.graphql schema/
# The embedded database's default folder, for a service started without a *_DATABASE_URL.
RUN mkdir .data && chown node:node .data
USER node
EXPOSE 4000
# Every HTTP service answers /health on PORT (compose overrides the check where readiness says more).
HEALTHCHECK --interval=10s --timeout=10s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 4000) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "router/dist/main.js"]
