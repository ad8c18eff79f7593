// Kubeconfig files for the harness. JSON is valid YAML, so kubectl, client-go and client-node all read it.
import { writeFileSync } from 'node:fs';

export interface KubeconfigUser {
  name: string;
  certPem?: string;
  keyPem?: string;
  token?: string;
}

const b64 = (text: string): string => Buffer.from(text).toString('base64');

export function writeKubeconfig(path: string, server: string, caPem: string, user: KubeconfigUser, namespace = 'default'): string {
  const credentials: Record<string, string> = {};
  if (user.certPem && user.keyPem) {
    credentials['client-certificate-data'] = b64(user.certPem);
    credentials['client-key-data'] = b64(user.keyPem);
  }
  if (user.token) credentials.token = user.token;
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'local', cluster: { server, 'certificate-authority-data': b64(caPem) } }],
    users: [{ name: user.name, user: credentials }],
    contexts: [{ name: user.name, context: { cluster: 'local', user: user.name, namespace } }],
    'current-context': user.name,
  };
  writeFileSync(path, JSON.stringify(config, null, 2), { mode: 0o600 });
  return path;
}
