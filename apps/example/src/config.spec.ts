import { describe, expect, it } from 'vitest';
import { parseConfig } from './config.js';

describe('example flags', () => {
  it('--work-style: valid by default, signal from the flag or WORK_STYLE, the flag first', () => {
    expect(parseConfig([], {}).workStyle).toBe('valid');
    expect(parseConfig(['--work-style', 'signal'], {}).workStyle).toBe('signal');
    expect(parseConfig([], { WORK_STYLE: 'signal' }).workStyle).toBe('signal');
    expect(parseConfig(['--work-style', 'valid'], { WORK_STYLE: 'signal' }).workStyle).toBe('valid');
    expect(() => parseConfig(['--work-style', 'abort'], {})).toThrow('--work-style must be valid or signal, got "abort"');
  });

  it('--shards: off by default, a count from the flag or SHARDS', () => {
    expect(parseConfig([], {}).shards).toBeUndefined();
    expect(parseConfig(['--shards', '12'], {}).shards).toBe(12);
    expect(parseConfig([], { SHARDS: '3' }).shards).toBe(3);
    for (const bad of ['0', '-2', '1.5', 'many']) {
      expect(() => parseConfig([`--shards=${bad}`], {})).toThrow(`--shards must be a whole number from 1, got ${JSON.stringify(bad)}`);
    }
  });

  it('--coordinated: off by default, the version from the flag or COORDINATED_VERSION', () => {
    expect(parseConfig([], {}).coordinated).toBeUndefined();
    expect(parseConfig(['--coordinated', '1.4.2'], {}).coordinated).toBe('1.4.2');
    expect(parseConfig([], { COORDINATED_VERSION: '1.5.0' }).coordinated).toBe('1.5.0');
  });

  it('--handover-on-shutdown: off by default, rollout from the flag or HANDOVER_ON_SHUTDOWN', () => {
    expect(parseConfig([], {}).handoverOnShutdown).toBeUndefined();
    expect(parseConfig(['--handover-on-shutdown', 'rollout'], {}).handoverOnShutdown).toBe('rollout');
    expect(parseConfig([], { HANDOVER_ON_SHUTDOWN: 'rollout' }).handoverOnShutdown).toBe('rollout');
    expect(() => parseConfig(['--handover-on-shutdown', 'newest'], {})).toThrow('--handover-on-shutdown must be rollout, got "newest"');
  });

  it('--port: the HTTP port, 8080 by default, from the flag or PORT, 0 for any free port', () => {
    expect(parseConfig([], {}).port).toBe(8080);
    expect(parseConfig([], { PORT: '3000' }).port).toBe(3000);
    expect(parseConfig(['--port', '0'], { PORT: '3000' }).port).toBe(0);
    for (const bad of ['', '-1', '65536', '80.5', '0x50', 'http']) {
      expect(() => parseConfig([`--port=${bad}`], {})).toThrow(`--port must be a TCP port, got ${JSON.stringify(bad)}`);
    }
  });

  it('--kube-config, --kubeconfig or KUBECONFIG; --id or POD_NAME; --namespace or POD_NAMESPACE', () => {
    expect(parseConfig(['--kube-config', '/a', '--id', 'me', '--namespace', 'ns'], { KUBECONFIG: '/b', POD_NAME: 'pod', POD_NAMESPACE: 'env' }))
      .toMatchObject({ kubeConfig: '/a', identity: 'me', namespace: 'ns' });
    expect(parseConfig(['--kubeconfig', '/a'], {}).kubeConfig).toBe('/a');
    expect(parseConfig([], { KUBECONFIG: '/b', POD_NAME: 'pod', POD_NAMESPACE: 'env' })).toMatchObject({ kubeConfig: '/b', identity: 'pod', namespace: 'env' });
    expect(parseConfig([], { KUBECONFIG: '', POD_NAME: '' })).toMatchObject({ kubeConfig: undefined, identity: undefined });
  });

  it('timings in seconds, to milliseconds; a loss policy of exit or rejoin', () => {
    expect(parseConfig(['--lease-duration', '4', '--renew-deadline', '3', '--retry-period', '0.5'], {}))
      .toMatchObject({ leaseDuration: 4000, renewDeadline: 3000, retryPeriod: 500 });
    expect(parseConfig([], { LEASE_DURATION: '20' }).leaseDuration).toBe(20_000);
    expect(() => parseConfig(['--retry-period', '0'], {})).toThrow('--retry-period must be a positive number of seconds, got "0"');
    expect(parseConfig(['--loss-policy', 'rejoin'], {}).lossPolicy).toBe('rejoin');
    expect(() => parseConfig([], { LOSS_POLICY: 'ignore' })).toThrow('--loss-policy must be exit or rejoin, got "ignore"');
  });

  it('--schedule catch-up|skip turns the leader-only jobs on; --tick-work-ms and --tick-style shape their runs', () => {
    expect(parseConfig([], {})).toMatchObject({ schedule: undefined, tickWorkMs: 300, tickStyle: 'signal' });
    expect(parseConfig(['--schedule', 'skip', '--tick-work-ms', '50', '--tick-style', 'ignore'], {}))
      .toMatchObject({ schedule: 'skip', tickWorkMs: 50, tickStyle: 'ignore' });
    expect(parseConfig([], { SCHEDULE: 'catch-up', TICK_WORK_MS: '0', TICK_STYLE: 'valid' }))
      .toMatchObject({ schedule: 'catch-up', tickWorkMs: 0, tickStyle: 'valid' });
    expect(() => parseConfig(['--schedule', 'always'], {})).toThrow('--schedule must be catch-up or skip, got "always"');
    expect(() => parseConfig(['--tick-work-ms', '1.5'], {})).toThrow('--tick-work-ms must be a whole number of milliseconds, got "1.5"');
    expect(() => parseConfig(['--tick-style', 'abort'], {})).toThrow('--tick-style must be signal or valid or ignore, got "abort"');
  });

  it('rejects unknown flags', () => {
    expect(() => parseConfig(['--without-election'], {})).toThrow("Unknown option '--without-election'");
  });
});
