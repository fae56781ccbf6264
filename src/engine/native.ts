// Loads the compiled C++ addon. Each area of the engine (src/engine/*.ts) declares the typed face
// of the functions it uses and is the only place that calls them; nothing else imports this file.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
// src/engine and dist/engine are both two levels below the package root.
const addonPath = path.join(here, '..', '..', 'build', 'Release', 'medix.node');

function load(): unknown {
  try {
    return createRequire(import.meta.url)(addonPath);
  } catch (err) {
    throw new Error(
      `medix: cannot load the native addon at ${addonPath} (${(err as Error).message}). ` +
        'Build it with `npm run build:native` (needs a C++17 compiler and Python for node-gyp).',
    );
  }
}

export const addon = load() as Record<string, unknown>;

/** Returns the addon typed as the interface an engine area declares for it. */
export function native<T>(): T {
  return addon as T;
}
