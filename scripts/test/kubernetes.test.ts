import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { render } from '../check-manifests.js';
import type { KubeObject } from '../manifest-rules.js';
import { readSupergraphConfig } from '../supergraph-config.js';

/** What the rendered production manifests say, checked against the code and the other deployment files. */
const root = fileURLToPath(new URL('../..', import.meta.url));
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } };
}
interface Container {
  command: string[];
  env?: EnvVar[];
  ports?: { name: string; containerPort: number }[];
  volumeMounts?: { name: string; mountPath: string }[];
}
let objects: KubeObject[];

const named = (kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata?.name === name);
function containerOf(name: string): Container {
  const object = named('Deployment', name) ?? named('Job', name);
  const container = (object?.spec as { template: { spec: { containers: Container[] } } } | undefined)?.template.spec.containers[0];
  if (!container) throw new Error(`no workload ${name}`);
  return container;
}
const envOf = (name: string) => new Map((containerOf(name).env ?? []).map((e) => [e.name, e]));

beforeAll(async () => {
  objects = await render(path.join(root, 'deploy/kubernetes/overlays/production'));
});

describe('Kubernetes manifests', () => {
  it('run the compiled entry point of each service, whose source exists', async () => {
    const commands = Object.fromEntries(
      ['router', 'users', 'products', 'orders', 'inventory', 'notifications', 'dashboard', 'shop-migrate'].map((n) => [n, containerOf(n).command]),
    );
    expect(commands).toEqual({
      router: ['node', 'router/dist/main.js'],
      users: ['node', 'subgraphs/users/dist/main.js'],
      products: ['node', 'subgraphs/products/dist/main.js'],
      orders: ['node', 'subgraphs/orders/dist/main.js'],
      inventory: ['node', 'subgraphs/inventory/dist/main.js'],
      notifications: ['node', 'subgraphs/users/dist/worker-main.js'],
      dashboard: ['node', 'dashboard/dist/main.js'],
      'shop-migrate': ['node', 'scripts/dist/migrate.js'],
    });
    for (const [, file] of Object.values(commands)) {
      const source = file!.replace('/dist/', '/src/').replace(/^scripts\/src\//, 'scripts/').replace(/\.js$/, '.ts');
      await expect(access(path.join(root, source)), source).resolves.toBeUndefined();
    }
  });

  it("point the router and orders at the subgraphs' Services, as the supergraph in the ConfigMap does", async () => {
    const { subgraphs } = await readSupergraphConfig(path.join(root, 'supergraph.docker.yaml'));
    const router = envOf('router');
    const sdl = await readFile(path.join(root, 'deploy/kubernetes/base/supergraph.graphql'), 'utf8');
    for (const { name, url } of subgraphs) {
      const service = named('Service', name) as { spec: { ports: { port: number; targetPort: string }[] } } | undefined;
      expect(service, name).toBeDefined();
      const port = service!.spec.ports[0]!;
      expect(containerOf(name).ports).toContainEqual({ name: port.targetPort, containerPort: 4000 });
      expect(router.get(`${name.toUpperCase()}_SUBGRAPH_URL`)?.value).toBe(`http://${name}:${port.port}/graphql`);
      expect(url).toBe(`http://${name}:${port.port}/graphql`);
      expect(sdl).toContain(`url: "${url}"`);
    }
    for (const variable of ['USERS_SUBGRAPH_URL', 'PRODUCTS_SUBGRAPH_URL']) {
      expect(envOf('orders').get(variable)?.value).toBe(router.get(variable)?.value);
    }
  });

  it('mount the supergraph ConfigMap as a folder (not subPath) where SUPERGRAPH_PATH points', () => {
    const mount = containerOf('router').volumeMounts?.find((m) => m.name === 'supergraph');
    expect(mount?.mountPath).toBe(path.dirname(envOf('router').get('SUPERGRAPH_PATH')!.value!));
    expect(mount).not.toHaveProperty('subPath');
    expect(named('ConfigMap', 'supergraph')?.data).toHaveProperty('supergraph.graphql');
  });

  it("take every secret from the operator's shop-secrets, with the keys the deploy README creates", async () => {
    const readme = await readFile(path.join(root, 'deploy/kubernetes/README.md'), 'utf8');
    const refs = objects.flatMap((o) => {
      const spec = (o.spec as { template?: { spec: { containers: Container[] } } } | undefined)?.template?.spec;
      return (spec?.containers ?? []).flatMap((c) => (c.env ?? []).flatMap((e) => (e.valueFrom?.secretKeyRef ? [e.valueFrom.secretKeyRef] : [])));
    });
    expect(new Set(refs.map((r) => r.name))).toEqual(new Set(['shop-secrets']));
    for (const key of new Set(refs.map((r) => r.key))) expect(readme, key).toContain(key);
    expect(objects.filter((o) => o.kind === 'Secret')).toEqual([]);
  });

  it('let orders reach users and products, and nothing but the router reach the subgraphs', () => {
    const policies = objects.filter((o) => o.kind === 'NetworkPolicy') as unknown as {
      metadata: { name: string };
      spec: { podSelector: object; ingress?: { from?: { podSelector?: { matchLabels?: Record<string, string> } }[] }[] };
    }[];
    const sources = (name: string) => policies.find((p) => p.metadata.name === name)!.spec.ingress!.flatMap((rule) => rule.from ?? []);
    expect(sources('subgraphs-from-router')).toEqual([{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'router' } } }]);
    expect(sources('users-products-from-orders')).toEqual([{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'orders' } } }]);
    expect(policies.find((p) => p.metadata.name === 'default-deny')?.spec.podSelector).toEqual({});
  });
});
