import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { context, propagation, trace, type Tracer, type TracerProvider } from '@opentelemetry/api';
import { readBool, readOptional, readUrl } from './config.js';

/** Where spans go, from the standard OpenTelemetry variables; undefined when tracing is off. */
export interface TelemetryConfig {
  /** The OTLP/HTTP traces URL (…/v1/traces). */
  tracesUrl: string;
  serviceName: string;
}

export function readTelemetryConfig(service: string, env: NodeJS.ProcessEnv = process.env): TelemetryConfig | undefined {
  if (readBool(env, 'OTEL_SDK_DISABLED', false)) return undefined;
  const tracesUrl = readUrl(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', ['http:', 'https:']);
  const base = readUrl(env, 'OTEL_EXPORTER_OTLP_ENDPOINT', ['http:', 'https:']);
  // The spec: the signal-specific variable is used as is; the general one gets the signal's path appended.
  const url = tracesUrl ?? (base ? `${base.replace(/\/+$/, '')}/v1/traces` : undefined);
  if (!url) return undefined;
  return { tracesUrl: url, serviceName: readOptional(env, 'OTEL_SERVICE_NAME') ?? service };
}

let provider: TracerProvider | undefined;
let active: Telemetry | undefined;

/** True while a tracer provider of ours is registered; code that would only make no-op spans checks it first. */
export function tracingEnabled(): boolean {
  return provider !== undefined;
}

/** The shop's tracer (the API's no-op one while tracing is off). */
export function tracer(): Tracer {
  return trace.getTracer('shop');
}

export interface Telemetry {
  readonly enabled: boolean;
  /** Sends the spans buffered so far (tests, before reading a collector). */
  flush(): Promise<void>;
  /** Sends the spans still buffered and unregisters the provider; safe to call more than once. */
  shutdown(): Promise<void>;
}

/**
 * Starts tracing when an OTLP endpoint is configured: a global tracer provider exporting in batches over
 * OTLP/HTTP, W3C trace-context propagation, and async context tracking (so @apollo/gateway's own spans and
 * ours nest). Without an endpoint nothing is registered, the SDK is not even loaded, and spans cost nothing.
 * Call it first in a process.
 */
export async function startTelemetry(service: string, env: NodeJS.ProcessEnv = process.env): Promise<Telemetry> {
  const config = readTelemetryConfig(service, env);
  if (!config) return { enabled: false, flush: async () => undefined, shutdown: async () => undefined };
  if (provider) throw new Error('telemetry is already started in this process');
  const [{ W3CTraceContextPropagator }, { OTLPTraceExporter }, { resourceFromAttributes }, { BatchSpanProcessor, NodeTracerProvider }, { ATTR_SERVICE_NAME }] =
    await Promise.all([
      import('@opentelemetry/core'),
      import('@opentelemetry/exporter-trace-otlp-http'),
      import('@opentelemetry/resources'),
      import('@opentelemetry/sdk-trace-node'),
      import('@opentelemetry/semantic-conventions'),
    ]);
  const own = new NodeTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: config.serviceName }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: config.tracesUrl }))],
  });
  own.register({ propagator: new W3CTraceContextPropagator() });
  provider = own;
  let stopping: Promise<void> | undefined;
  active = {
    enabled: true,
    flush: () => own.forceFlush(),
    shutdown() {
      stopping ??= own.shutdown().finally(() => {
        if (provider !== own) return;
        provider = undefined;
        active = undefined;
        // Back to the no-op globals, so a later start (another test) can register again.
        trace.disable();
        context.disable();
        propagation.disable();
      });
      return stopping;
    },
  };
  return active;
}

/** Flushes and stops the telemetry this process started, if any (before process.exit). */
export async function shutdownTelemetry(): Promise<void> {
  await active?.shutdown();
}

/** Adds `traceparent` for the active span to an outgoing request's headers (nothing while tracing is off). */
export function injectTraceContext(headers: { set(name: string, value: string): unknown }): void {
  if (!provider) return;
  propagation.inject(context.active(), headers, { set: (carrier, key, value) => carrier.set(key, value) });
}

/** Puts the GraphQL operation's type and name on the request's server span, for finding traces by operation. */
export function operationSpanPlugin<TContext extends BaseContext>(): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      const span = provider ? trace.getActiveSpan() : undefined;
      if (!span) return;
      return {
        async didResolveOperation({ operationName, operation }) {
          if (operation) span.setAttribute('graphql.operation.type', operation.operation);
          if (operationName) span.setAttribute('graphql.operation.name', operationName);
        },
      };
    },
  };
}
