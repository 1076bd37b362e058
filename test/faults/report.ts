import { readFileSync } from 'node:fs';
import type { Verdict } from './consistency.js';
import type { LoadTally } from './order-load.js';
import type { Death } from './service-process.js';

/** One fault's outcome, one row of the table. */
export interface PhaseResult {
  fault: string;
  /** What the fault did, as the harness saw it take effect. */
  observed: string;
  tally: LoadTally;
  verdict: Verdict;
  deaths: Death[];
  /** Services not running when the phase ended. */
  down: string[];
  /** Seconds from the end of the load until every check passed; undefined when they never did. */
  settleSeconds: number | undefined;
  settleLimitSeconds: number;
  problems: string[];
}

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

function failures(tally: LoadTally): string {
  const entries = [...tally.failures].sort(([, a], [, b]) => b - a);
  return entries.length === 0 ? '-' : entries.map(([key, n]) => `${key} ${n}`).join(', ');
}

export function resultsTable(results: readonly PhaseResult[]): string {
  const rows = results.map((r) => {
    const n = r.verdict.notifications;
    return [
      r.fault,
      `${r.tally.placed.size}`,
      `${r.tally.cancelled.size}`,
      `${r.tally.retries}`,
      `${r.verdict.pending.length}`,
      `${r.verdict.reservedUnits}/${r.verdict.expectedUnits} (all ${r.verdict.globalReservedUnits}/${r.verdict.globalExpectedUnits})`,
      `${n.expected}/${n.recorded}/${n.missing.length}/${n.doubled.length}`,
      r.deaths.length === 0 ? '-' : r.deaths.map((d) => `${d.service}(${d.signal ?? d.code})`).join(' '),
      r.settleSeconds === undefined ? `>${r.settleLimitSeconds}s` : `${r.settleSeconds.toFixed(1)}s`,
      r.problems.length === 0 ? 'ok' : 'FAIL',
    ];
  });
  const main = table(
    ['fault', 'placed OK', 'cancel OK', 'retries', 'PENDING', 'held/expected units', 'notif exp/rec/miss/dbl', 'died', 'settle', 'result'],
    rows,
  );
  const details = results.map((r) => {
    const statuses = Object.entries(r.verdict.byStatus).map(([s, n]) => `${s} ${n}`).join(', ');
    const lines = [
      `${r.fault} (${r.observed}):\n  ${r.verdict.orders} orders in the database (${statuses || 'none'}); client-visible failures: ${failures(r.tally)}`,
      ...r.problems.map((p) => `  FAIL ${p}`),
      '',
    ];
    return lines.join('\n');
  });
  return `${main}\n\n${details.join('\n')}`;
}

/** The warnings and errors of a JSON log by message, most frequent first, with the last line of each. */
export function logSummary(path: string, limit = 8): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return '  (no log)';
  }
  const counts = new Map<string, { n: number; level: number; example: string }>();
  const other: string[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    let entry: { level?: number; msg?: string; err?: { message?: string }; harness?: string };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      // Not pino's: a crash's stack trace or a start-up failure, worth seeing as is.
      other.push(line);
      continue;
    }
    if (entry.harness !== undefined || (entry.level ?? 0) < 40) continue;
    const key = `${entry.level! >= 50 ? 'ERROR' : 'WARN'} ${entry.msg ?? ''}${entry.err?.message ? `: ${entry.err.message.slice(0, 160)}` : ''}`;
    const seen = counts.get(key) ?? { n: 0, level: entry.level!, example: line };
    seen.n++;
    seen.example = line;
    counts.set(key, seen);
  }
  const top = [...counts].sort(([, a], [, b]) => b.n - a.n).slice(0, limit);
  const lines = top.map(([key, { n }]) => `  ${String(n).padStart(6)} × ${key}`);
  if (other.length > 0) lines.push(`  ${other.length} non-JSON lines, the last ones:`, ...other.slice(-8).map((l) => `    ${l.slice(0, 300)}`));
  return lines.length === 0 ? '  (no warnings or errors)' : lines.join('\n');
}
