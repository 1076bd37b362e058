import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { SupergraphSdlHook } from '@apollo/gateway';
import type { Logger } from '@shop/common';

const digest = (sdl: string) => createHash('sha256').update(sdl).digest('hex').slice(0, 16);

/**
 * Serves the supergraph from a file and hands every change to the gateway, which
 * swaps schemas between requests: in-flight operations finish on the old one.
 * The folder is watched, not the file, so editors and `mv` replacing it are seen,
 * and any change in the folder rereads the file and compares its hash: in a
 * Kubernetes ConfigMap volume the file is a link through `..data`, and an update
 * only renames a new `..data` link into place, so no event names the file.
 */
export function supergraphFromFile(file: string, log: Logger, debounceMs = 100): SupergraphSdlHook {
  return async ({ update }) => {
    const initial = await readFile(file, 'utf8');
    let current = digest(initial);
    let timer: NodeJS.Timeout | undefined;
    const reload = async () => {
      let next: string;
      try {
        next = await readFile(file, 'utf8');
      } catch (error) {
        log.warn({ err: error, file }, 'supergraph file unreadable; keeping the current schema');
        return;
      }
      const hash = digest(next);
      if (hash === current || next.trim() === '') return;
      try {
        update(next);
        current = hash;
        log.info({ file, sha256: hash }, 'supergraph reloaded');
      } catch (error) {
        log.error({ err: error, file }, 'new supergraph rejected; keeping the current schema');
      }
    };
    const watcher: FSWatcher = watch(path.dirname(file), () => {
      clearTimeout(timer);
      timer = setTimeout(() => void reload(), debounceMs);
    });
    watcher.on('error', (error) => log.error({ err: error }, 'supergraph watcher failed'));
    return {
      supergraphSdl: initial,
      cleanup: async () => {
        clearTimeout(timer);
        watcher.close();
      },
    };
  };
}
