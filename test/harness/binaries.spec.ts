import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { controlPlaneVersions, ensureBinaries } from './binaries.ts';

describe('control-plane binaries', () => {
  const saved = process.env.KUBEBUILDER_ASSETS;
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'assets-'));
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.KUBEBUILDER_ASSETS;
    else process.env.KUBEBUILDER_ASSETS = saved;
    rmSync(dir, { recursive: true, force: true });
  });

  it('takes prebuilt binaries from KUBEBUILDER_ASSETS and builds nothing', () => {
    for (const name of ['kube-apiserver', 'etcd', 'kubectl']) writeFileSync(join(dir, name), '');
    process.env.KUBEBUILDER_ASSETS = dir;
    expect(ensureBinaries(() => { throw new Error('must not build'); })).toMatchObject({
      kubeApiserver: join(dir, 'kube-apiserver'), etcd: join(dir, 'etcd'), source: `KUBEBUILDER_ASSETS=${dir}`,
    });
  });

  it('names the missing binary when KUBEBUILDER_ASSETS is incomplete', () => {
    writeFileSync(join(dir, 'kube-apiserver'), '');
    process.env.KUBEBUILDER_ASSETS = dir;
    expect(() => ensureBinaries()).toThrow(`KUBEBUILDER_ASSETS=${dir} has no etcd`);
  });

  it('reads the versions to build from test/k8s/go.mod', () => {
    expect(controlPlaneVersions()).toEqual({ kubernetes: 'v1.36.3', etcd: 'v3.7.1' });
  });
});
