// Specs import the library by its package name, as users do; in the workspace that name is its source.
import { fileURLToPath } from 'node:url';

const source = (path: string): string => fileURLToPath(new URL(`../../libs/leader-election/src/${path}`, import.meta.url));

export const libraryAliases = [
  ...['core', 'kubernetes', 'metrics', 'schedule', 'terminus', 'testing'].map((subpath) => ({
    find: new RegExp(`^nestjs-lease-election/${subpath}$`), replacement: source(`${subpath}/index.ts`),
  })),
  { find: /^nestjs-lease-election$/, replacement: source('index.ts') },
];
