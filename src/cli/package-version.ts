// Versions of medix itself and of the packages it runs with, read from their package.json files the
// way Node resolves packages (node_modules folders from here upwards), so `medix --version` and
// `medix info` report what is actually installed, optional packages included.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** medix's own version: package.json two folders up, from src/cli and from dist/cli alike. */
export function medixVersion(): string {
  return (JSON.parse(readFileSync(join(here, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
}

/** The installed version of a package, or null when it is not installed. */
export function installedVersion(name: string): string | null {
  for (let dir = here; ; dir = dirname(dir)) {
    const file = join(dir, 'node_modules', name, 'package.json');
    if (existsSync(file)) return (JSON.parse(readFileSync(file, 'utf8')) as { version?: string }).version ?? 'unknown';
    if (dirname(dir) === dir) return null;
  }
}
