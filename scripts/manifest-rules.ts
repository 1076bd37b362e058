/**
 * Checks of rendered Kubernetes objects: the API schemas of Kubernetes 1.33 (kubernetes-models, which validates an
 * object against the OpenAPI schema of its kind), and the project's own rules. Each function returns the problems it
 * found, one sentence each, naming the object; none means the object passes.
 */
import * as models from 'kubernetes-models';

/** A rendered object, as parsed from YAML. */
export type KubeObject = Record<string, unknown> & { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown } };

type Validating = new (data: object) => { validate(): void };

/** Every kind the schemas know, by `apiVersion/kind`. */
const KINDS: ReadonlyMap<string, Validating> = (() => {
  const kinds = new Map<string, Validating>();
  // Groups hold versions that hold models (apps.v1.Deployment); the core group holds models itself (v1.Service).
  const visit = (value: unknown, depth: number) => {
    const meta = value as { apiVersion?: unknown; kind?: unknown };
    if (typeof value === 'function' && typeof meta.apiVersion === 'string' && typeof meta.kind === 'string') {
      kinds.set(`${meta.apiVersion}/${meta.kind}`, value as Validating);
    } else if (typeof value === 'object' && value !== null && depth < 3) {
      for (const inner of Object.values(value)) visit(inner, depth + 1);
    }
  };
  visit(models, 0);
  return kinds;
})();

export function describe(object: KubeObject): string {
  const name = typeof object.metadata?.name === 'string' ? object.metadata.name : '(no name)';
  return `${String(object.kind)} ${name}`;
}

/** Problems with the object's schema: an unknown kind, a pre-release API version, or fields the schema refuses. */
export function schemaProblems(object: KubeObject): string[] {
  const key = `${String(object.apiVersion)}/${String(object.kind)}`;
  // The models keep removed versions (extensions/v1beta1, ...) too: only stable APIs are allowed here.
  if (typeof object.apiVersion === 'string' && /\/v\d+(alpha|beta)\d*$|^v\d+(alpha|beta)\d*$/.test(object.apiVersion)) {
    return [`${describe(object)}: ${object.apiVersion} is not a stable API version`];
  }
  const Model = KINDS.get(key);
  if (!Model) return [`${describe(object)}: ${key} is not a kind of the Kubernetes API`];
  try {
    new Model(object).validate();
    return [];
  } catch (error) {
    return [`${describe(object)}: ${error instanceof Error ? error.message : String(error)}`];
  }
}

interface Container {
  name?: string;
  image?: string;
  livenessProbe?: unknown;
  readinessProbe?: unknown;
  resources?: { requests?: Record<string, unknown>; limits?: Record<string, unknown> };
  securityContext?: SecurityContext;
}
interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  privileged?: boolean;
  allowPrivilegeEscalation?: boolean;
  readOnlyRootFilesystem?: boolean;
  capabilities?: { drop?: string[]; add?: string[] };
}
interface PodSpec {
  containers?: Container[];
  initContainers?: Container[];
  securityContext?: SecurityContext;
}

/** The pod spec of an object that runs pods, and whether its containers serve (and so need probes). */
function podOf(object: KubeObject): { spec: PodSpec; serving: boolean } | undefined {
  const spec = object.spec as Record<string, unknown> | undefined;
  const template = (spec?.template as { spec?: PodSpec } | undefined)?.spec;
  switch (object.kind) {
    case 'Deployment':
    case 'StatefulSet':
    case 'DaemonSet':
    case 'ReplicaSet':
      return template ? { spec: template, serving: true } : undefined;
    case 'Job':
      return template ? { spec: template, serving: false } : undefined;
    case 'CronJob': {
      const job = (spec?.jobTemplate as { spec?: { template?: { spec?: PodSpec } } } | undefined)?.spec?.template?.spec;
      return job ? { spec: job, serving: false } : undefined;
    }
    case 'Pod':
      return spec ? { spec: spec as PodSpec, serving: true } : undefined;
    default:
      return undefined;
  }
}

/** An image with an explicit tag other than `latest`, or a digest. */
export function pinned(image: string): boolean {
  if (/@sha256:[0-9a-f]{64}$/.test(image)) return true;
  const lastPart = image.slice(image.lastIndexOf('/') + 1);
  const tag = /:([\w][\w.-]{0,127})$/.exec(lastPart)?.[1];
  return tag !== undefined && tag !== 'latest';
}

/** The project's rules: probes, requests and limits, a non-root locked-down security context, pinned images, no Secret values. */
export function ruleProblems(object: KubeObject): string[] {
  const problems: string[] = [];
  const where = describe(object);
  if (object.kind === 'Secret') {
    const filled = ['data', 'stringData'].filter((field) => Object.keys((object[field] as object | undefined) ?? {}).length > 0);
    if (filled.length > 0) problems.push(`${where}: a Secret with values (${filled.join(', ')}) in the repository; reference one the operator creates`);
  }
  const pod = podOf(object);
  if (!pod) return problems;
  const podSecurity = pod.spec.securityContext ?? {};
  const containers = [...(pod.spec.initContainers ?? []), ...(pod.spec.containers ?? [])];
  if ((pod.spec.containers ?? []).length === 0) problems.push(`${where}: no containers`);
  for (const container of containers) {
    const at = `${where}, container ${container.name ?? '(no name)'}`;
    const isInit = (pod.spec.initContainers ?? []).includes(container);
    if (pod.serving && !isInit) {
      if (!container.livenessProbe) problems.push(`${at}: no livenessProbe`);
      if (!container.readinessProbe) problems.push(`${at}: no readinessProbe`);
    }
    for (const kind of ['requests', 'limits'] as const) {
      for (const resource of ['cpu', 'memory']) {
        if (container.resources?.[kind]?.[resource] === undefined) problems.push(`${at}: no ${resource} in resources.${kind}`);
      }
    }
    const security = container.securityContext ?? {};
    const nonRoot = security.runAsNonRoot ?? podSecurity.runAsNonRoot;
    const user = security.runAsUser ?? podSecurity.runAsUser;
    if (nonRoot !== true) problems.push(`${at}: runAsNonRoot is not true`);
    if (user === 0) problems.push(`${at}: runs as user 0`);
    if (security.privileged === true) problems.push(`${at}: privileged`);
    if (security.allowPrivilegeEscalation !== false) problems.push(`${at}: allowPrivilegeEscalation is not false`);
    if (security.readOnlyRootFilesystem !== true) problems.push(`${at}: readOnlyRootFilesystem is not true`);
    if (!(security.capabilities?.drop ?? []).includes('ALL')) problems.push(`${at}: capabilities do not drop ALL`);
    if ((security.capabilities?.add ?? []).length > 0) problems.push(`${at}: adds capabilities`);
    if (typeof container.image !== 'string' || !pinned(container.image)) {
      problems.push(`${at}: image ${JSON.stringify(container.image ?? null)} is not pinned to a tag (or digest) other than latest`);
    }
  }
  return problems;
}

/** Every problem of every object. */
export function manifestProblems(objects: readonly KubeObject[]): string[] {
  return objects.flatMap((object) => [...schemaProblems(object), ...ruleProblems(object)]);
}
