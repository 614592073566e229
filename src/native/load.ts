// Loads one of the project's native addons (binding.gyp) from build/Release. Compiled code runs
// from dist/src/... and vitest runs src/... directly, so search upwards from the caller instead of
// assuming a fixed depth.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function loadAddon(file: string, fromUrl: string = import.meta.url): unknown {
  const relative = join('build', 'Release', file);
  const start = dirname(fileURLToPath(fromUrl));
  for (let dir = start; ; dir = dirname(dir)) {
    const candidate = join(dir, relative);
    if (existsSync(candidate)) return createRequire(fromUrl)(candidate);
    if (dirname(dir) === dir) break;
  }
  throw new Error(`native addon ${relative} not found in any directory above ${start} (build it with \`npm run build:native\` in the vibepn package directory)`);
}
