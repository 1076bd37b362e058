/**
 * One notification worker draining a queue, in a process of its own (the worker scenario runs this once per
 * setting). Input: one JSON argument; output: the drain's result as one JSON line.
 */
import { openDatabase } from '@shop/common';
import { drain } from './scenarios/worker.js';

const input = JSON.parse(process.argv[2] ?? '{}') as {
  database: { url?: string; dataDir?: string };
  redisUrl: string;
  prefix: string;
  label: string;
  count: number;
  concurrency?: number;
};
const db = await openDatabase(input.database);
try {
  const result = await drain(db, input.redisUrl, input.prefix, input.label, input.count, input.concurrency);
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await db.close();
}
process.exit(0);
