import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { SupergraphSdlHook } from '@apollo/gateway';
import type { Logger } from '@shop/common';

/**
 * Serves the supergraph from a file and hands every change to the gateway, which
 * swaps schemas between requests: in-flight operations finish on the old one.
 * The folder is watched, not the file, so editors and `mv` replacing it are seen.
 */
export function supergraphFromFile(file: string, log: Logger, debounceMs = 100): SupergraphSdlHook {
  return async ({ update }) => {
    let current = await readFile(file, 'utf8');
    let timer: NodeJS.Timeout | undefined;
    const reload = async () => {
      let next: string;
      try {
        next = await readFile(file, 'utf8');
      } catch (error) {
        log.warn({ err: error, file }, 'supergraph file unreadable; keeping the current schema');
        return;
      }
      if (next === current || next.trim() === '') return;
      try {
        update(next);
        current = next;
        log.info({ file }, 'supergraph reloaded');
      } catch (error) {
        log.error({ err: error, file }, 'new supergraph rejected; keeping the current schema');
      }
    };
    const watcher: FSWatcher = watch(path.dirname(file), (_event, name) => {
      if (name && name !== path.basename(file)) return;
      clearTimeout(timer);
      timer = setTimeout(() => void reload(), debounceMs);
    });
    watcher.on('error', (error) => log.error({ err: error }, 'supergraph watcher failed'));
    return {
      supergraphSdl: current,
      cleanup: async () => {
        clearTimeout(timer);
        watcher.close();
      },
    };
  };
}
