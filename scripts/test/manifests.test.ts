import { describe, expect, it } from 'vitest';
import { kustomizations, render } from '../check-manifests.js';
import { manifestProblems, pinned, ruleProblems, schemaProblems, type KubeObject } from '../manifest-rules.js';

/** A Deployment that meets every rule; each test below breaks one thing. */
function deployment(): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web' },
    spec: {
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: {
          securityContext: { runAsNonRoot: true, runAsUser: 1000 },
          containers: [
            {
              name: 'web',
              image: 'shop-supergraph:0.1.0',
              livenessProbe: { httpGet: { path: '/health', port: 4000 } },
              readinessProbe: { httpGet: { path: '/ready', port: 4000 } },
              resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '256Mi' } },
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
            },
          ],
        },
      },
    },
  };
}

type Container = Record<string, unknown> & { securityContext: Record<string, unknown>; resources?: { limits: Record<string, unknown> } };
const containerOf = (object: KubeObject) =>
  (object as unknown as { spec: { template: { spec: { containers: Container[]; securityContext: Record<string, unknown> } } } }).spec.template.spec;

/** The problems of a copy of the good Deployment changed by `change`. */
function problemsWith(change: (pod: ReturnType<typeof containerOf>) => void): string[] {
  const object = deployment();
  change(containerOf(object));
  return manifestProblems([object]);
}

describe('manifest rules', () => {
  it('pass a Deployment that meets them all', () => {
    expect(manifestProblems([deployment()])).toEqual([]);
  });

  it.each([
    ['no liveness probe', (pod: ReturnType<typeof containerOf>) => delete pod.containers[0]!.livenessProbe, /container web: no livenessProbe/],
    ['no readiness probe', (pod: ReturnType<typeof containerOf>) => delete pod.containers[0]!.readinessProbe, /no readinessProbe/],
    ['no memory limit', (pod: ReturnType<typeof containerOf>) => delete pod.containers[0]!.resources!.limits.memory, /no memory in resources\.limits/],
    ['no resources at all', (pod: ReturnType<typeof containerOf>) => delete pod.containers[0]!.resources, /no cpu in resources\.requests/],
    ['root allowed', (pod: ReturnType<typeof containerOf>) => delete pod.securityContext.runAsNonRoot, /runAsNonRoot is not true/],
    ['user 0', (pod: ReturnType<typeof containerOf>) => (pod.containers[0]!.securityContext.runAsUser = 0), /runs as user 0/],
    ['privilege escalation', (pod: ReturnType<typeof containerOf>) => delete pod.containers[0]!.securityContext.allowPrivilegeEscalation, /allowPrivilegeEscalation is not false/],
    ['writable root', (pod: ReturnType<typeof containerOf>) => (pod.containers[0]!.securityContext.readOnlyRootFilesystem = false), /readOnlyRootFilesystem is not true/],
    ['capabilities kept', (pod: ReturnType<typeof containerOf>) => (pod.containers[0]!.securityContext.capabilities = { drop: ['NET_RAW'] }), /do not drop ALL/],
    ['image latest', (pod: ReturnType<typeof containerOf>) => (pod.containers[0]!.image = 'shop-supergraph:latest'), /is not pinned/],
    ['image untagged', (pod: ReturnType<typeof containerOf>) => (pod.containers[0]!.image = 'registry.example.com:5000/shop/shop-supergraph'), /is not pinned/],
    ['a field of the wrong type', (pod: ReturnType<typeof containerOf>) => (pod.containers[0]!.resources!.limits.cpu = 'lots'), /resources\/limits\/cpu must match format "quantity"/],
    ['a required field missing', (pod: ReturnType<typeof containerOf>) => delete pod.containers[0]!.name, /containers\/0 must have required property name/],
  ])('complain about %s', (_what, change, message) => {
    const problems = problemsWith(change);
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.join('\n')).toMatch(message);
    expect(problems.every((p) => p.startsWith('Deployment web'))).toBe(true);
  });

  it('complain about a Secret with values, and not about one without', () => {
    const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'shop-secrets' }, stringData: { 'jwt-secret': 'x' } };
    expect(ruleProblems(secret)).toEqual([expect.stringMatching(/^Secret shop-secrets: a Secret with values \(stringData\)/)]);
    expect(ruleProblems({ ...secret, stringData: undefined, data: { a: 'eA==' } })).toEqual([expect.stringMatching(/\(data\)/)]);
    expect(ruleProblems({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'empty' } })).toEqual([]);
  });

  it('complain about unknown kinds and pre-release or removed API versions', () => {
    expect(schemaProblems({ ...deployment(), apiVersion: 'extensions/v1beta1' })).toEqual([
      'Deployment web: extensions/v1beta1 is not a stable API version',
    ]);
    expect(schemaProblems({ apiVersion: 'apps/v1', kind: 'Deploymnet', metadata: { name: 'x' } })).toEqual([
      'Deploymnet x: apps/v1/Deploymnet is not a kind of the Kubernetes API',
    ]);
    expect(schemaProblems({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's' }, spec: { ports: [{ port: 'http' }] } })).toEqual([
      expect.stringMatching(/^Service s: .*ports\/0\/port must be integer/),
    ]);
  });

  it('require probes of serving pods, not of a Job', () => {
    const job: KubeObject = {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'migrate' },
      spec: { template: (deployment().spec as { template: object }).template },
    };
    const pod = containerOf(job as KubeObject);
    pod.containers[0]!.livenessProbe = undefined;
    pod.containers[0]!.readinessProbe = undefined;
    expect(ruleProblems(job)).toEqual([]);
  });

  it('tell pinned images from unpinned ones', () => {
    expect(['shop:0.1.0', 'registry.example.com:5000/shop/shop:0.1.0', `shop@sha256:${'a'.repeat(64)}`].map(pinned)).toEqual([true, true, true]);
    expect(['shop', 'shop:latest', 'registry.example.com:5000/shop', ''].map(pinned)).toEqual([false, false, false, false]);
  });
});

describe('the repository manifests', () => {
  it('render with kubectl kustomize, base and every overlay, and pass every check', { timeout: 60_000 }, async () => {
    const folders = await kustomizations();
    expect(folders.map((f) => f.replace(/.*deploy\/kubernetes\//, ''))).toEqual(['base', 'overlays/production']);
    for (const folder of folders) {
      const objects = await render(folder);
      expect(objects.filter((o) => o.kind === 'Deployment').map((o) => o.metadata?.name).sort()).toEqual(
        ['dashboard', 'inventory', 'notifications', 'orders', 'products', 'router', 'users'],
      );
      expect(manifestProblems(objects)).toEqual([]);
    }
  });
});
