// What an integration test uses: admin clients, a namespace of its own, and users with only the
// rights the test grants (client certificates on the local control plane, ServiceAccount tokens elsewhere).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CoordinationV1Api, CoordinationV1beta1Api, CoreV1Api, KubeConfig, RbacAuthorizationV1Api, type RbacV1Subject, type V1PolicyRule,
} from '@kubernetes/client-node';
import type { ClusterInfo } from './control-plane.ts';
import { writeKubeconfig } from './kubeconfig.ts';
import { issueCertificate, loadCertificateAuthority } from './pki.ts';

export interface MintedUser {
  kubeconfigPath: string;
  kubeConfig: KubeConfig;
  subject: RbacV1Subject;
}

export class TestCluster {
  readonly info: ClusterInfo;
  readonly admin: KubeConfig;
  private readonly scratch: string;

  constructor(info: ClusterInfo) {
    this.info = info;
    this.scratch = mkdtempSync(join(info.workDir ?? tmpdir(), 'test-'));
    if (!info.workDir) process.once('exit', () => rmSync(this.scratch, { recursive: true, force: true }));
    this.admin = new KubeConfig();
    this.admin.loadFromFile(info.adminKubeconfig);
  }

  get core(): CoreV1Api {
    return this.admin.makeApiClient(CoreV1Api);
  }

  get coordination(): CoordinationV1Api {
    return this.admin.makeApiClient(CoordinationV1Api);
  }

  /** LeaseCandidates: served only with coordinated leader election on (the integration control plane has it). */
  get coordinationBeta(): CoordinationV1beta1Api {
    return this.admin.makeApiClient(CoordinationV1beta1Api);
  }

  get rbac(): RbacAuthorizationV1Api {
    return this.admin.makeApiClient(RbacAuthorizationV1Api);
  }

  /** A fresh namespace for one test. */
  async createNamespace(prefix = 'test'): Promise<string> {
    const namespace = await this.core.createNamespace({ body: { metadata: { generateName: `${prefix}-` } } });
    return namespace.metadata!.name!;
  }

  /** A user who can do nothing until the test binds a Role to `subject`. */
  async mintUser(namespace: string, name = `user-${randomBytes(3).toString('hex')}`): Promise<MintedUser> {
    const kubeconfigPath = join(this.scratch, `${name}.kubeconfig`);
    let subject: RbacV1Subject;
    if (this.info.pkiDir) {
      const ca = await loadCertificateAuthority(this.info.pkiDir);
      const cert = await issueCertificate(ca, { commonName: name });
      writeKubeconfig(kubeconfigPath, this.info.server, ca.certPem, { name, ...cert }, namespace);
      subject = { kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name };
    } else {
      await this.core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
      const token = await this.core.createNamespacedServiceAccountToken({
        name, namespace, body: { spec: { audiences: [], expirationSeconds: 3600 } },
      });
      const caPem = Buffer.from(this.admin.getCurrentCluster()!.caData ?? '', 'base64').toString();
      writeKubeconfig(kubeconfigPath, this.info.server, caPem, { name, token: token.status!.token }, namespace);
      subject = { kind: 'ServiceAccount', name, namespace };
    }
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(kubeconfigPath);
    return { kubeconfigPath, kubeConfig, subject };
  }

  /** Grants `rules` in `namespace` to `subject` through a Role and RoleBinding of the given name. */
  async grant(namespace: string, name: string, subject: RbacV1Subject, rules: V1PolicyRule[]): Promise<void> {
    await this.rbac.createNamespacedRole({ namespace, body: { metadata: { name }, rules } });
    await this.rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
        subjects: [subject],
      },
    });
  }
}
