// `npm test` runs this before the suites that use the compatibility stack.
import { COMPAT_NODE, ensureCompatStack } from './stack.ts';

console.error(`compat stack (${COMPAT_NODE}): ${ensureCompatStack()}`);
