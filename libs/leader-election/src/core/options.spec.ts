import { describe, expect, it } from 'vitest';
import { InvalidElectorOptionsError, resolveElectorOptions, type LeaderElectorOptions } from './options.js';

const valid: LeaderElectorOptions = { leaseName: 'my-lease', namespace: 'default', identity: 'a' };

function problemsOf(options: Partial<LeaderElectorOptions>): string[] {
  try {
    resolveElectorOptions({ ...valid, ...options } as LeaderElectorOptions);
    return [];
  } catch (error) {
    if (!(error instanceof InvalidElectorOptionsError)) throw error;
    return [...error.problems];
  }
}

describe('elector options', () => {
  it('coordinated: emulationVersion defaults to binaryVersion and strategy to OldestEmulationVersion', () => {
    expect(resolveElectorOptions({ ...valid, coordinated: { binaryVersion: '1.36.0' } }).coordinated)
      .toEqual({ binaryVersion: '1.36.0', emulationVersion: '1.36.0', strategy: 'OldestEmulationVersion' });
    expect(resolveElectorOptions({ ...valid, coordinated: { binaryVersion: '1.36.0', emulationVersion: '1.35.0' } }).coordinated?.emulationVersion).toBe('1.35.0');
  });

  it("defaults to client-go's 15 s / 10 s / 2 s, release on stop, and the 'exit' loss policy", () => {
    expect(resolveElectorOptions(valid)).toEqual({
      leaseName: 'my-lease', namespace: 'default', identity: 'a', leaseDuration: 15_000, renewDeadline: 10_000,
      retryPeriod: 2_000, releaseOnStop: true, lossPolicy: 'exit', settleTimeout: 30_000,
    });
  });

  const matrix: Array<[string, Partial<LeaderElectorOptions>, string]> = [
    ['zero leaseDuration', { leaseDuration: 0 }, 'leaseDuration must be greater than 0, got 0'],
    ['negative renewDeadline', { renewDeadline: -1 }, 'renewDeadline must be greater than 0, got -1'],
    ['NaN retryPeriod', { retryPeriod: Number.NaN }, 'retryPeriod must be a number of milliseconds, got null'],
    ['a string duration', { leaseDuration: '15s' as unknown as number }, 'leaseDuration must be a number of milliseconds, got "15s"'],
    ['seconds instead of milliseconds', { leaseDuration: 15, renewDeadline: 10, retryPeriod: 2 }, 'did you mean 15000?'],
    ['leaseDuration not above renewDeadline', { leaseDuration: 10_000, renewDeadline: 10_000 }, 'leaseDuration (10000) must be greater than renewDeadline (10000)'],
    ['a coordinated version with a v', { coordinated: { binaryVersion: 'v1.2.3' } }, 'coordinated.binaryVersion must be a semantic version like "1.4.2" (no "v"), got "v1.2.3"'],
    ['a coordinated version without a patch', { coordinated: { binaryVersion: '1.2' } }, 'coordinated.binaryVersion must be a semantic version'],
    ['an emulationVersion above binaryVersion', { coordinated: { binaryVersion: '1.2.3', emulationVersion: '1.10.0' } },
      'coordinated.emulationVersion (1.10.0) must not be above binaryVersion (1.2.3)'],
    ['a release emulated by its own pre-release binary', { coordinated: { binaryVersion: '1.3.0-rc.1', emulationVersion: '1.3.0' } },
      'coordinated.emulationVersion (1.3.0) must not be above binaryVersion (1.3.0-rc.1)'],
    ['coordinated: true', { coordinated: true as unknown as LeaderElectorOptions['coordinated'] }, 'coordinated must be { binaryVersion, emulationVersion?, strategy? }'],
    ['renewDeadline not above 1.2 × retryPeriod', { renewDeadline: 2_400, retryPeriod: 2_000 }, 'renewDeadline (2400) must be greater than 1.2 × retryPeriod (2400)'],
    ['an empty identity', { identity: ' ' }, 'identity must be a non-empty string'],
    ['an empty lease name', { leaseName: '' }, 'leaseName must be a non-empty string'],
    ['an invalid lease name', { leaseName: 'My_Lease' }, 'leaseName "My_Lease" is not a valid Lease name'],
    ['an invalid namespace', { namespace: 'kube.system' }, 'namespace "kube.system" is not a valid namespace name'],
    ['an empty namespace', { namespace: '' }, 'namespace is not set: pass the namespace option (createLeaderElector and LeaderElectionModule default it to POD_NAMESPACE'],
    ['a namespace that is not a string', { namespace: 7 as unknown as string }, 'namespace must be a string, got 7'],
    ['an unknown loss policy', { lossPolicy: 'panic' as 'exit' }, `lossPolicy must be 'exit' or 'rejoin', got "panic"`],
    ['a non-boolean releaseOnStop', { releaseOnStop: 'yes' as unknown as boolean }, 'releaseOnStop must be true or false, got "yes"'],
    ['a zero settleTimeout', { settleTimeout: 0 }, 'settleTimeout must be greater than 0, got 0'],
  ];
  for (const [what, options, expected] of matrix) {
    it(`rejects ${what}`, () => {
      expect(problemsOf(options).join('\n')).toContain(expected);
    });
  }

  it('lists every problem in one error, each naming the option and its value', () => {
    const problems = problemsOf({ leaseName: 'Bad!', namespace: '', identity: '', leaseDuration: -5, retryPeriod: 0 });
    expect(problems).toHaveLength(5);
    expect(problems.map((problem) => problem.split(' ')[0])).toEqual(['leaseName', 'namespace', 'identity', 'leaseDuration', 'retryPeriod']);
  });
});
