// The suites that run in-process on the oldest supported stack (see package.json): the elector's
// unit and integration suites and the Nest module's end-to-end suites, from the same spec files as
// the main run, with every package of the stack taken from here instead of the workspace.
import { join, resolve, sep } from 'node:path';
import swc from 'unplugin-swc';
import { defineConfig, type Plugin } from 'vitest/config';
import { libraryAliases } from '../harness/library-aliases.ts';

const here = import.meta.dirname;
const root = resolve(here, '..', '..');
const STACK = [
  '@kubernetes/client-node', '@nestjs/common', '@nestjs/config', '@nestjs/core', '@nestjs/platform-express',
  '@nestjs/schedule', '@nestjs/terminus', '@nestjs/testing', 'reflect-metadata', 'rxjs', 'vitest',
];

// `npm --prefix test/compat test` puts this folder's Node 20 first on PATH; anything else is a mistake.
if (process.versions.node.split('.')[0] !== '20') {
  throw new Error(`the compat suites must run on Node 20, not ${process.version}: run them with 'npm run test:compat'`);
}

/**
 * Bare imports of the stack's packages resolve from this folder, wherever the importing file is,
 * and never fall back to the workspace's copies.
 */
const fromCompatStack: Plugin = {
  name: 'compat-stack',
  enforce: 'pre',
  async resolveId(source, _importer, options) {
    const name = source.split('/').slice(0, source.startsWith('@') ? 2 : 1).join('/');
    if (!STACK.includes(name)) return null;
    const resolved = await this.resolve(source, join(here, 'package.json'), { ...options, skipSelf: true });
    if (!resolved?.id.startsWith(join(here, 'node_modules') + sep)) {
      throw new Error(`${source} did not resolve inside test/compat/node_modules (${resolved?.id}): run 'npm run test:compat' to install the stack`);
    }
    return resolved;
  },
};

export default defineConfig({
  root,
  // Nest's dependency injection needs decorator metadata, which Vitest 3's esbuild does not emit.
  plugins: [fromCompatStack, swc.vite({ jsc: { transform: { legacyDecorator: true, decoratorMetadata: true } } })],
  resolve: { alias: libraryAliases },
  test: {
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['libs/**/*.spec.ts'] },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/elector.spec.ts', 'test/e2e/**/*.spec.ts'],
          globalSetup: ['test/harness/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
