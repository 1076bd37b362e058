import type { BenchContext, ScenarioResult } from '../lib/context.js';

export async function countsScenario(_ctx: BenchContext): Promise<ScenarioResult> {
  throw new Error('not written yet');
}
