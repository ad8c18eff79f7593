// The elector's unit and integration suites on the oldest supported stack (see package.json):
// the same spec files as the main run, with @kubernetes/client-node and vitest taken from here.
import { resolve } from 'node:path';
import { defineConfig } from 'vitest/config';

const here = import.meta.dirname;
const root = resolve(here, '..', '..');
const installed = (name: string): string => resolve(here, 'node_modules', name);

// `npm --prefix test/compat test` puts this folder's Node 20 first on PATH; anything else is a mistake.
if (process.versions.node.split('.')[0] !== '20') {
  throw new Error(`the compat suites must run on Node 20, not ${process.version}: run them with 'npm run test:compat'`);
}

export default defineConfig({
  root,
  resolve: {
    alias: [
      // The Nest-free core only: these suites must not need Nest.
      { find: /^nestjs-lease-election$/, replacement: resolve(root, 'libs/leader-election/src/elector/index.ts') },
      { find: /^@kubernetes\/client-node$/, replacement: installed('@kubernetes/client-node') },
      { find: /^vitest$/, replacement: installed('vitest') },
    ],
  },
  test: {
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['libs/leader-election/src/elector/**/*.spec.ts'] },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/elector.spec.ts'],
          globalSetup: ['test/harness/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
