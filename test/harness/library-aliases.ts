// Specs import the library by its package name, as users do; in the workspace that name is its source.
import { fileURLToPath } from 'node:url';

const source = (path: string): string => fileURLToPath(new URL(`../../libs/leader-election/src/${path}`, import.meta.url));

export const libraryAliases = [
  { find: /^nestjs-lease-election\/terminus$/, replacement: source('terminus/index.ts') },
  { find: /^nestjs-lease-election$/, replacement: source('index.ts') },
];
