import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { context, propagation, trace } from '@opentelemetry/api';
import {
  ConfigError,
  createLogger,
  injectTraceContext,
  readTelemetryConfig,
  startTelemetry,
  tracingEnabled,
  type Telemetry,
} from '../src/index.js';

let started: Telemetry | undefined;
afterEach(async () => {
  await started?.shutdown();
  started = undefined;
});

describe('telemetry configuration', () => {
  it('is off without an OTLP endpoint', () => {
    expect(readTelemetryConfig('orders', {})).toBeUndefined();
    expect(readTelemetryConfig('orders', { OTEL_EXPORTER_OTLP_ENDPOINT: '  ' })).toBeUndefined();
  });

  it('appends /v1/traces to the general endpoint and takes the traces endpoint as it is', () => {
    expect(readTelemetryConfig('orders', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' })).toEqual({
      tracesUrl: 'http://collector:4318/v1/traces',
      serviceName: 'orders',
      batchDelayMs: 5_000,
      exportTimeoutMs: 10_000,
    });
    expect(
      readTelemetryConfig('orders', {
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://traces.example/otlp',
        OTEL_SERVICE_NAME: 'orders-eu',
        OTEL_BSP_SCHEDULE_DELAY: '200',
        OTEL_EXPORTER_OTLP_TIMEOUT: '3000',
      }),
    ).toEqual({ tracesUrl: 'https://traces.example/otlp', serviceName: 'orders-eu', batchDelayMs: 200, exportTimeoutMs: 3_000 });
  });

  it('honours OTEL_SDK_DISABLED and refuses a bad URL by name', () => {
    expect(readTelemetryConfig('router', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' })).toBeUndefined();
    expect(() => readTelemetryConfig('router', { OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).toThrow(ConfigError);
    expect(() => readTelemetryConfig('router', { OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' })).toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT/);
  });
});

describe('starting and stopping', () => {
  it('registers nothing when off: no provider, no propagation', async () => {
    started = await startTelemetry('router', {});
    expect(started.enabled).toBe(false);
    expect(tracingEnabled()).toBe(false);
    const headers = new Headers();
    injectTraceContext(headers);
    expect([...headers.keys()]).toEqual([]);
    expect(trace.getTracer('t').startSpan('x').isRecording()).toBe(false);
  });

  it('registers a provider and W3C propagation when on, and resets the globals on shutdown', async () => {
    // Nothing listens there; no span is ended, so nothing is sent.
    started = await startTelemetry('router', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1' });
    expect(tracingEnabled()).toBe(true);
    await expect(startTelemetry('router', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1' })).rejects.toThrow(/already started/);
    const span = trace.getTracer('t').startSpan('x');
    expect(span.isRecording()).toBe(true);
    const headers = new Headers();
    context.with(trace.setSpan(context.active(), span), () => injectTraceContext(headers));
    expect(headers.get('traceparent')).toBe(`00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`);

    await started.shutdown();
    await started.shutdown();
    expect(tracingEnabled()).toBe(false);
    expect(trace.getTracer('t').startSpan('y').isRecording()).toBe(false);
    expect(propagation.fields()).toEqual([]);
    // And it can start again (the next test file, or a restart in one process).
    started = await startTelemetry('router', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1' });
    expect(tracingEnabled()).toBe(true);
  });

  it('logs a failed export as a JSON line of the service, and still shuts down promptly', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
        done();
      },
    });
    // Nothing listens on port 1; batches go every 50 ms and give up after 300 ms.
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1', OTEL_BSP_SCHEDULE_DELAY: '50', OTEL_EXPORTER_OTLP_TIMEOUT: '300' };
    started = await startTelemetry('orders', env, createLogger('orders', 'warn', sink));
    trace.getTracer('t').startSpan('lost').end();
    await expect.poll(() => lines.length, { timeout: 5_000 }).toBeGreaterThan(0);
    expect(lines[0]).toMatchObject({ service: 'orders', msg: expect.stringMatching(/^opentelemetry: /) });
    expect(JSON.stringify(lines[0])).toMatch(/ECONNREFUSED|connect|export/i);

    // Another span is waiting when the process stops: shutdown resolves within its deadline all the same.
    trace.getTracer('t').startSpan('also lost').end();
    const stopping = performance.now();
    await started.shutdown();
    expect(performance.now() - stopping).toBeLessThan(2_000);
    expect(tracingEnabled()).toBe(false);
  });
});
