export async function writeReport(_resultsDir: string, _out: string): Promise<void> {}
