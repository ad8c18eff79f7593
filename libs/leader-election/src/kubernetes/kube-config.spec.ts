import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultNamespace, loadKubeConfig, SERVICE_ACCOUNT_NAMESPACE_FILE, SERVICE_ACCOUNT_TOKEN_FILE } from './kube-config.js';

const KUBECONFIG = `
apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: 'https://127.0.0.1:6443' } }]
users: [{ name: u, user: { token: not-a-real-token } }]
contexts: [{ name: ctx, context: { cluster: c, user: u, namespace: from-context } }]
current-context: ctx
`;

describe('loadKubeConfig', () => {
  const saved = { HOME: process.env.HOME, KUBECONFIG: process.env.KUBECONFIG, POD_NAMESPACE: process.env.POD_NAMESPACE };
  let home: string;

  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), 'kube-config-spec-'));
    process.env.HOME = home;
    delete process.env.KUBECONFIG;
    delete process.env.POD_NAMESPACE;
  });
  afterEach(() => {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    rmSync(home, { recursive: true, force: true });
  });

  // Inside a pod the service account is a configuration; elsewhere there is none to find.
  it.skipIf(existsSync(SERVICE_ACCOUNT_TOKEN_FILE) || process.platform === 'win32')(
    'says where it looked when there is no configuration at all, instead of targeting localhost:8080', () => {
      expect(() => loadKubeConfig()).toThrow(`KUBECONFIG is not set or empty, ${join(home, '.kube', 'config')} does not exist, and no service account token`);
      process.env.KUBECONFIG = '';
      delete process.env.HOME;
      expect(() => loadKubeConfig()).toThrow('HOME is not set, so there is no ~/.kube/config');
    });

  it('reads ~/.kube/config', () => {
    mkdirSync(join(home, '.kube'));
    writeFileSync(join(home, '.kube', 'config'), KUBECONFIG);
    expect(loadKubeConfig().getCurrentCluster()?.server).toBe('https://127.0.0.1:6443');
  });

  it.skipIf(existsSync(SERVICE_ACCOUNT_NAMESPACE_FILE))('takes the namespace from POD_NAMESPACE, else from the kubeconfig context', () => {
    const file = join(home, 'config');
    writeFileSync(file, KUBECONFIG);
    const kubeConfig = loadKubeConfig(file);
    expect(defaultNamespace(kubeConfig)).toBe('from-context');
    process.env.POD_NAMESPACE = 'from-env';
    expect(defaultNamespace(kubeConfig)).toBe('from-env');
  });

  it('names a kubeconfig file that does not exist', () => {
    expect(() => loadKubeConfig(join(home, 'missing'))).toThrow(`kubeconfig file ${join(home, 'missing')} does not exist`);
  });

  it('names a kubeconfig without a current context', () => {
    const file = join(home, 'no-context');
    writeFileSync(file, KUBECONFIG.replace('current-context: ctx', ''));
    expect(() => loadKubeConfig(file)).toThrow(`kubeconfig file ${file} has no current cluster`);
  });
});
