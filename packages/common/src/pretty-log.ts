import type { DestinationStream } from 'pino';

const LEVELS: Record<number, [string, string]> = {
  10: ['TRACE', '\x1b[90m'],
  20: ['DEBUG', '\x1b[36m'],
  30: ['INFO ', '\x1b[32m'],
  40: ['WARN ', '\x1b[33m'],
  50: ['ERROR', '\x1b[31m'],
  60: ['FATAL', '\x1b[35m'],
};
const RESET = '\x1b[0m';
const DIM = '\x1b[2m';
const OMITTED = new Set(['level', 'time', 'msg', 'name', 'service', 'pid', 'hostname', 'err']);

function value(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) ? JSON.stringify(v) : v;
  return JSON.stringify(v);
}

/** One JSON log line as a person reads it: time, level, service, message, the other fields as key=value, the error's stack. */
export function prettyLine(line: string, colors: boolean): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const [level, color] = LEVELS[Number(entry.level)] ?? ['?    ', ''];
  const time = new Date(Number(entry.time)).toISOString().slice(11, 23);
  const fields = Object.entries(entry)
    .filter(([key]) => !OMITTED.has(key))
    .map(([key, v]) => `${key}=${value(v)}`)
    .join(' ');
  const err = entry.err as { stack?: string; message?: string } | undefined;
  const paint = (code: string, text: string) => (colors ? `${code}${text}${RESET}` : text);
  return (
    `${paint(DIM, time)} ${paint(color, level)} ${paint(DIM, String(entry.service ?? entry.name ?? ''))} ${String(entry.msg ?? '')}` +
    `${fields ? ` ${paint(DIM, fields)}` : ''}${err ? `\n${err.stack ?? err.message ?? ''}` : ''}\n`
  );
}

/** A pino destination that writes each line pretty-printed to `out` (a terminal, in development). */
export function prettyDestination(out: NodeJS.WritableStream & { isTTY?: boolean } = process.stdout): DestinationStream {
  const colors = Boolean(out.isTTY) && !process.env.NO_COLOR;
  return { write: (line: string) => void out.write(prettyLine(line.trimEnd(), colors)) };
}

/**
 * How logs are written when no destination is given: `LOG_FORMAT=pretty` or `json`; by default pretty on a terminal
 * outside production, JSON otherwise (log shippers, docker, CI). `npm start` asks its services for pretty lines when
 * it runs on a terminal itself.
 */
export function logFormat(env: NodeJS.ProcessEnv = process.env, stdout: { isTTY?: boolean } = process.stdout): 'pretty' | 'json' {
  if (env.LOG_FORMAT === 'pretty' || env.LOG_FORMAT === 'json') return env.LOG_FORMAT;
  return stdout.isTTY && env.NODE_ENV !== 'production' ? 'pretty' : 'json';
}
