import { defineConfig } from 'vitest/config';
import { libraryAliases } from './test/harness/library-aliases.ts';

export default defineConfig({
  // Nest's dependency injection needs legacy decorators with design-type metadata.
  oxc: { decorator: { legacy: true, emitDecoratorMetadata: true } },
  resolve: { alias: libraryAliases },
  test: {
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['libs/**/*.spec.ts', 'apps/**/*.spec.ts'] },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.spec.ts'],
          exclude: ['test/chaos/**', 'test/sim/**'],
          globalSetup: ['test/harness/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        // The deterministic simulator: CPU-bound, so it runs on its own before the real-time suites.
        extends: true,
        test: { name: 'simulation', include: ['test/sim/**/*.spec.ts'] },
      },
      {
        // Runs on its own after the others: its recovery deadlines must not compete for the CPU.
        extends: true,
        test: {
          name: 'chaos',
          include: ['test/chaos/**/*.spec.ts'],
          testTimeout: 20 * 60_000,
        },
      },
    ],
  },
});
