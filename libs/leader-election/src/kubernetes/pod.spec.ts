import { afterEach, describe, expect, it } from 'vitest';
import { resolveIdentity } from './pod.js';

const logger = { log: () => {}, warn: () => {}, error: () => {} };

describe('the identity of this pod', () => {
  const savedPodName = process.env.POD_NAME;
  afterEach(() => {
    if (savedPodName === undefined) delete process.env.POD_NAME;
    else process.env.POD_NAME = savedPodName;
  });

  it('is the option when given', () => {
    process.env.POD_NAME = 'pod-7';
    expect(resolveIdentity('a', logger)).toBe('a');
  });

  it('takes the identity from POD_NAME, else the hostname with a random suffix and a warning, once', () => {
    process.env.POD_NAME = 'pod-7';
    expect(resolveIdentity(undefined, logger)).toBe('pod-7');
    delete process.env.POD_NAME;
    const warnings: string[] = [];
    const warn = { ...logger, warn: (message: string) => warnings.push(message) };
    const first = resolveIdentity(undefined, warn);
    const second = resolveIdentity(undefined, warn);
    expect(first).toMatch(/^.+_[0-9a-f]{8}$/);
    expect(second).not.toBe(first);
    expect(warnings.length).toBeLessThanOrEqual(1); // once per process (another test may have warned already)
  });
});
