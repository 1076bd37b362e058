import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { readSupergraphConfig, type SubgraphEntry } from '../supergraph-config.js';

/**
 * What can be checked of the docker setup without a container engine: the files agree with each other and with the
 * code. `npm run test:containers` builds and runs them for real.
 */
const root = fileURLToPath(new URL('../..', import.meta.url));
interface Service {
  image?: string;
  build?: unknown;
  env_file?: string | string[];
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test?: string[]; disable?: boolean };
  ports?: string[];
}
let compose: { name?: string; services: Record<string, Service> };
let composeText: string;
let services: Record<string, Service>;
let subgraphs: SubgraphEntry[];
let dockerfile: string;

const SHOP_IMAGE = '${SHOP_IMAGE:-shop-supergraph:latest}';
/** The services that run the shop's own image (the rest are PostgreSQL and Redis). */
const shopServices = () => Object.entries(services).filter(([, s]) => s.image === SHOP_IMAGE);

beforeAll(async () => {
  composeText = await readFile(path.join(root, 'docker-compose.yml'), 'utf8');
  // Compose applies YAML merge keys (`<<: *subgraph`); the yaml package does when asked.
  compose = parse(composeText, { merge: true }) as typeof compose;
  services = compose.services;
  ({ subgraphs } = await readSupergraphConfig(path.join(root, 'supergraph.yaml')));
  dockerfile = await readFile(path.join(root, 'Dockerfile'), 'utf8');
});

describe('docker-compose.yml', () => {
  it('has a service for every subgraph, running its compiled entry point on its own database, with Redis', async () => {
    const init = await readFile(path.join(root, 'docker/init-databases.sql'), 'utf8');
    for (const { name } of subgraphs) {
      const service = services[name];
      expect(service, name).toBeDefined();
      expect(service!.command).toEqual(['node', `subgraphs/${name}/dist/main.js`]);
      const url = new URL(service!.environment![`${name.toUpperCase()}_DATABASE_URL`]!);
      expect([url.hostname, url.pathname]).toEqual(['postgres', `/${name}`]);
      expect(init).toContain(`CREATE DATABASE ${name};`);
      expect(service!.environment!.REDIS_URL).toBe('redis://redis:6379');
    }
    // The postgres healthcheck passes only when every one of those databases exists.
    const check = services.postgres!.healthcheck!.test!.join(' ');
    for (const { name } of subgraphs) expect(check).toContain(`'${name}'`);
    expect(check).toContain(`= ${subgraphs.length}`);
  });

  it('runs compiled JavaScript only: every command is a file the build compiles', () => {
    for (const [name, service] of shopServices()) {
      const [node, entry, ...rest] = service.command ?? [];
      expect([node, rest], name).toEqual(['node', []]);
      const source = entry!.replace(/\/dist\//, '/src/').replace(/^scripts\/src\//, 'scripts/').replace(/\.js$/, '.ts');
      expect(existsSync(path.join(root, source)), `${name}: ${source}`).toBe(true);
    }
  });

  it('points the router and orders at the subgraph services on the ports they listen on', async () => {
    const router = services.router!;
    const docker = await readSupergraphConfig(path.join(root, 'supergraph.docker.yaml'));
    for (const { name } of subgraphs) {
      const port = services[name]!.environment!.PORT;
      const expected = `http://${name}:${port}/graphql`;
      expect(router.environment![`${name.toUpperCase()}_SUBGRAPH_URL`], name).toBe(expected);
      expect(docker.subgraphs.find((s) => s.name === name)?.url).toBe(expected);
    }
    expect(services.orders!.environment!.USERS_SUBGRAPH_URL).toBe(router.environment!.USERS_SUBGRAPH_URL);
    expect(services.orders!.environment!.PRODUCTS_SUBGRAPH_URL).toBe(router.environment!.PRODUCTS_SUBGRAPH_URL);
    expect(router.ports![0]).toBe(`\${ROUTER_BIND:-0.0.0.0}:\${ROUTER_PORT:-4000}:${router.environment!.PORT}`);
  });

  it('publishes only the router to clients; admin surfaces (dashboard, metrics) on the host loopback', () => {
    const published = Object.entries(services).flatMap(([name, s]) => (s.ports ?? []).map((p) => [name, p] as const));
    expect(published.map(([name]) => name).sort()).toEqual(['dashboard', 'router', 'router']);
    const clientPort = services.router!.ports![0];
    for (const [name, port] of published) if (port !== clientPort) expect(port, name).toMatch(/^127\.0\.0\.1:/);
    expect(services.dashboard!.ports).toEqual(['127.0.0.1:${DASHBOARD_PORT:-4005}:4005']);
    expect(services.router!.ports).toContain('127.0.0.1:${METRICS_PORT:-9464}:${METRICS_PORT:-9464}');
    expect(services.router!.environment!.METRICS_HOST).toBe('0.0.0.0');
  });

  it('starts services only after what they depend on is ready, and every such service says when it is', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const [dependency, { condition }] of Object.entries(service.depends_on ?? {})) {
        // The one-shot migration finishes; everything else stays up and is healthy.
        if (dependency === 'migrate') {
          expect(condition, `${name} -> ${dependency}`).toBe('service_completed_successfully');
        } else {
          expect(condition, `${name} -> ${dependency}`).toBe('service_healthy');
          expect(services[dependency]?.healthcheck?.test, dependency).toBeDefined();
        }
      }
    }
    // The router needs every subgraph, and Redis for its entity cache, persisted queries and rate limit.
    expect(Object.keys(services.router!.depends_on ?? {}).sort()).toEqual([...subgraphs.map((s) => s.name), 'redis'].sort());
    expect(services.router!.environment!.REDIS_URL).toBe(services.users!.environment!.REDIS_URL);
  });

  it('runs one image for every shop service, built by one of them that all the others start after', () => {
    const shop = shopServices();
    expect(shop.map(([name]) => name).sort()).toEqual(
      ['dashboard', 'migrate', 'notifications', 'router', ...subgraphs.map((s) => s.name)].sort(),
    );
    const builders = shop.filter(([, s]) => s.build !== undefined).map(([name]) => name);
    expect(builders).toEqual(['migrate']);
    // docker-compose 1.29 makes sure of images in dependency order: the builder must come before every other user.
    const dependsOnBuilder = (name: string): boolean =>
      Object.keys(services[name]!.depends_on ?? {}).some((d) => d === 'migrate' || dependsOnBuilder(d));
    for (const [name] of shop) if (name !== 'migrate') expect(dependsOnBuilder(name), name).toBe(true);
  });

  it('hands the settings file to every shop service, requires the secrets, and never asks for demo data', () => {
    for (const [name, service] of shopServices()) expect(service.env_file, name).toBe('${SHOP_ENV_FILE:-.env}');
    expect(composeText).toContain('${IDENTITY_SECRET:?');
    expect(composeText).toContain('${POSTGRES_PASSWORD:?');
    expect(composeText).not.toContain('SEED_DEMO_DATA');
    // docker-compose 1.x refuses a top-level name (the project name is -p or COMPOSE_PROJECT_NAME).
    expect(compose.name).toBeUndefined();
    expect(services.postgres!.image).toBe('${POSTGRES_IMAGE:-postgres:16-alpine}');
    expect(services.redis!.image).toBe('${REDIS_IMAGE:-redis:7-alpine}');
    expect(services.redis!.healthcheck).toBeDefined();
    expect((services.redis as Service & { command: string[] }).command.join(' ')).toContain('--appendonly yes --appendfsync everysec --maxmemory-policy noeviction');
  });
});

describe('Dockerfile', () => {
  const runtimeStage = () => dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));

  it('builds in stages on a Node image chosen at build time, and runs as a non-root user with a healthcheck', () => {
    expect(dockerfile.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(3);
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:\d+(-[a-z]+)?-slim$/m);
    for (const from of dockerfile.match(/^FROM \S+/gm)!) expect(from).toMatch(/^FROM (\$\{NODE_IMAGE\}|deps|build)$/);
    expect(runtimeStage()).toMatch(/^USER node$/m);
    expect(runtimeStage()).toMatch(/^HEALTHCHECK /m);
  });

  it('installs every workspace, and only production dependencies and compiled code in the runtime stage', async () => {
    const { workspaces } = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { workspaces: string[] };
    for (const workspace of workspaces) expect(dockerfile).toContain(`COPY ${workspace}/package.json ${workspace}/`);
    const runtime = runtimeStage();
    expect(runtime).toMatch(/npm ci --omit=dev/);
    expect(runtime).toMatch(/NODE_OPTIONS=--conditions=shop-dist/);
    expect(runtime).not.toMatch(/tsx|COPY \. /);
    expect(runtime).toMatch(/^CMD \["node", "router\/dist\/main\.js"\]$/m);
    // The files read at run time from beside the packages: migrations and the composed supergraph.
    for (const { name } of subgraphs) expect(runtime).toContain(`COPY subgraphs/${name}/migrations subgraphs/${name}/migrations`);
    expect(runtime).toContain('COPY schema/supergraph.graphql schema/');
  });

  it('resolves each workspace package to its compiled code under the shop-dist condition', async () => {
    for (const dir of ['packages/common', ...subgraphs.map((s) => `subgraphs/${s.name}`), 'router', 'dashboard']) {
      const { exports } = JSON.parse(await readFile(path.join(root, dir, 'package.json'), 'utf8')) as {
        exports: Record<string, { 'shop-dist': string; default: string }>;
      };
      for (const [subpath, target] of Object.entries(exports)) {
        expect(target.default, `${dir} ${subpath}`).toMatch(/^\.\/src\/.+\.ts$/);
        expect(target['shop-dist'], `${dir} ${subpath}`).toBe(target.default.replace(/^\.\/src\//, './dist/').replace(/\.ts$/, '.js'));
      }
    }
  });

  it('keeps secrets, local state, dependencies and build output out of the build context', async () => {
    const ignored = (await readFile(path.join(root, '.dockerignore'), 'utf8')).split('\n');
    for (const entry of ['.env', '.env.*', '.data', 'node_modules', '**/node_modules', 'dist', '**/dist', '.git']) {
      expect(ignored, entry).toContain(entry);
    }
  });
});

describe('.env.example', () => {
  async function sources(dir: string): Promise<string> {
    const entries = await readdir(path.join(root, dir), { recursive: true, withFileTypes: true });
    const files = entries.filter((e) => e.isFile() && e.name.endsWith('.ts')).map((e) => path.join(e.parentPath, e.name));
    return (await Promise.all(files.map((f) => readFile(f, 'utf8')))).join('\n');
  }

  it('holds only settings that compose or a service reads', async () => {
    const example = await readFile(path.join(root, '.env.example'), 'utf8');
    const names = [...example.matchAll(/^#? ?([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]!);
    expect(names).toContain('IDENTITY_SECRET');
    const dirs = ['packages/common/src', ...subgraphs.map((s) => `subgraphs/${s.name}/src`), 'router/src', 'dashboard/src'];
    const code = (await Promise.all(dirs.map(sources))).join('\n');
    const unread = names.filter((name) => !code.includes(`'${name}'`) && !code.includes(`env.${name}`) && !composeText.includes(`\${${name}`));
    expect(unread).toEqual([]);
  });
});
