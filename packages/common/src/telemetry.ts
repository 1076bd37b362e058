import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { DiagLogLevel, context, diag, propagation, trace, type Tracer, type TracerProvider } from '@opentelemetry/api';
import { readBool, readInt, readLogLevel, readOptional, readUrl } from './config.js';
import { createLogger, type Logger } from './logger.js';

/** Where spans go, from the standard OpenTelemetry variables; undefined when tracing is off. */
export interface TelemetryConfig {
  /** The OTLP/HTTP traces URL (…/v1/traces). */
  tracesUrl: string;
  serviceName: string;
  /** How long spans wait to be sent in a batch (OTEL_BSP_SCHEDULE_DELAY). */
  batchDelayMs: number;
  /** Deadline of one export, retries included (OTEL_EXPORTER_OTLP_TRACES_TIMEOUT or OTEL_EXPORTER_OTLP_TIMEOUT). */
  exportTimeoutMs: number;
}

export function readTelemetryConfig(service: string, env: NodeJS.ProcessEnv = process.env): TelemetryConfig | undefined {
  if (readBool(env, 'OTEL_SDK_DISABLED', false)) return undefined;
  const tracesUrl = readUrl(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', ['http:', 'https:']);
  const base = readUrl(env, 'OTEL_EXPORTER_OTLP_ENDPOINT', ['http:', 'https:']);
  // The spec: the signal-specific variable is used as is; the general one gets the signal's path appended.
  const url = tracesUrl ?? (base ? `${base.replace(/\/+$/, '')}/v1/traces` : undefined);
  if (!url) return undefined;
  return {
    tracesUrl: url,
    serviceName: readOptional(env, 'OTEL_SERVICE_NAME') ?? service,
    batchDelayMs: readInt(env, 'OTEL_BSP_SCHEDULE_DELAY', 5_000, 1),
    exportTimeoutMs: readInt(env, 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', readInt(env, 'OTEL_EXPORTER_OTLP_TIMEOUT', 10_000, 1), 1),
  };
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
export async function startTelemetry(
  service: string,
  env: NodeJS.ProcessEnv = process.env,
  /** Where the SDK's own warnings (failed exports) go; a JSON logger of the service by default. */
  diagnosticsLog?: Logger,
): Promise<Telemetry> {
  const config = readTelemetryConfig(service, env);
  if (!config) return { enabled: false, flush: async () => undefined, shutdown: async () => undefined };
  if (provider) throw new Error('telemetry is already started in this process');
  // Warnings and errors only, unless LOG_LEVEL asks for less.
  const level = readLogLevel(env);
  const diagnostics = diagnosticsLog ?? createLogger(config.serviceName, ['silent', 'fatal', 'error'].includes(level) ? level : 'warn');
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
    spanProcessors: [
      new BatchSpanProcessor(new OTLPTraceExporter({ url: config.tracesUrl, timeoutMillis: config.exportTimeoutMs }), {
        scheduledDelayMillis: config.batchDelayMs,
        exportTimeoutMillis: config.exportTimeoutMs,
      }),
    ],
  });
  own.register({ propagator: new W3CTraceContextPropagator() });
  // The SDK reports failed exports through its diagnostics, silent unless given a logger: an unreachable
  // collector shows up in the service's own JSON logs.
  const report = (level: 'error' | 'warn') => (message: string, ...args: unknown[]) => {
    const err = args.find((arg) => arg instanceof Error);
    diagnostics[level](err ? { err } : {}, `opentelemetry: ${message}`);
  };
  diag.setLogger(
    {
      error: report('error'),
      warn: report('warn'),
      info: () => undefined,
      debug: () => undefined,
      verbose: () => undefined,
    },
    { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true },
  );
  provider = own;
  let stopping: Promise<void> | undefined;
  active = {
    enabled: true,
    flush: () => own.forceFlush(),
    shutdown() {
      stopping ??= stop();
      return stopping;
    },
  };
  // Never fails and never holds an exit up for long: spans that cannot be sent by then are given up.
  const stop = async () => {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        diagnostics.warn('opentelemetry: spans not sent before the shutdown deadline were dropped');
        resolve();
      }, config.exportTimeoutMs + 1_000);
    });
    const flushed = own.shutdown().catch((error: unknown) => diagnostics.warn({ err: error }, 'opentelemetry: spans lost at shutdown'));
    await Promise.race([flushed, deadline]);
    clearTimeout(timer);
    if (provider !== own) return;
    provider = undefined;
    active = undefined;
    // Back to the no-op globals, so a later start (another test) can register again.
    trace.disable();
    context.disable();
    propagation.disable();
    diag.disable();
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

/** `traceparent` (and `tracestate`) for the active span, to spread into a request's headers; empty while tracing is off. */
export function traceHeaders(): Record<string, string> {
  const headers: Record<string, string> = {};
  if (provider) propagation.inject(context.active(), headers);
  return headers;
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
