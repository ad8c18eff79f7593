// `npm test` runs this first, so a cold Go build shows its progress instead of hiding in a test hook.
import { ensureBinaries, ensureClientGoPeer } from './binaries.ts';

console.error(`control-plane binaries: ${ensureBinaries().source}`);
console.error(`client-go peer: ${ensureClientGoPeer()}`);
