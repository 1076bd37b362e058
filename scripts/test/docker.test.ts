import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { readSupergraphConfig, type SubgraphEntry } from '../supergraph-config.js';

/** What can be checked of the docker setup without a Docker engine: the files agree with each other. */
const root = fileURLToPath(new URL('../..', import.meta.url));
interface Service {
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  ports?: string[];
}
let services: Record<string, Service>;
let subgraphs: SubgraphEntry[];

beforeAll(async () => {
  // Compose applies YAML merge keys (`<<: *subgraph`); the yaml package does when asked.
  services = (parse(await readFile(path.join(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, Service> }).services;
  ({ subgraphs } = await readSupergraphConfig(path.join(root, 'supergraph.yaml')));
});

describe('docker-compose.yml', () => {
  it('has a service for every subgraph, on its own database, with Redis', async () => {
    const init = await readFile(path.join(root, 'docker/init-databases.sql'), 'utf8');
    for (const { name } of subgraphs) {
      const service = services[name];
      expect(service, name).toBeDefined();
      expect(service!.command).toEqual(['node', '--import', 'tsx', `subgraphs/${name}/src/main.ts`]);
      const url = new URL(service!.environment![`${name.toUpperCase()}_DATABASE_URL`]!);
      expect([url.hostname, url.pathname]).toEqual(['postgres', `/${name}`]);
      expect(init).toContain(`CREATE DATABASE ${name};`);
      expect(service!.environment!.REDIS_URL).toBe('redis://redis:6379');
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
    expect(router.ports).toEqual([`4000:${router.environment!.PORT}`]);
  });

  it('starts services only after what they depend on is healthy, and every such service has a healthcheck', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const [dependency, { condition }] of Object.entries(service.depends_on ?? {})) {
        expect(condition, `${name} -> ${dependency}`).toBe('service_healthy');
        expect(services[dependency]?.healthcheck, dependency).toBeDefined();
      }
    }
    // The router needs every subgraph, and Redis for its entity cache, persisted queries and rate limit.
    expect(Object.keys(services.router!.depends_on ?? {}).sort()).toEqual([...subgraphs.map((s) => s.name), 'redis'].sort());
    expect(services.router!.environment!.REDIS_URL).toBe(services.users!.environment!.REDIS_URL);
  });

  it('builds a multi-stage image that runs as a non-root user', async () => {
    const dockerfile = await readFile(path.join(root, 'Dockerfile'), 'utf8');
    expect(dockerfile.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/^USER node$/m);
  });

  it('documents every database URL of the compose file in .env.example', async () => {
    const example = await readFile(path.join(root, '.env.example'), 'utf8');
    for (const { name } of subgraphs) {
      expect(example).toContain(`${name.toUpperCase()}_DATABASE_URL=${services[name]!.environment![`${name.toUpperCase()}_DATABASE_URL`]}`);
    }
  });
});
