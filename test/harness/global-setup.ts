// Vitest global setup for the integration project: one control plane per test run, shared by
// every suite (each test works in a namespace of its own). TEST_KUBECONFIG swaps in a real cluster.
import type { TestProject } from 'vitest/node';
import { KubeConfig } from '@kubernetes/client-node';
import { ControlPlane, type ClusterInfo } from './control-plane.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    cluster: ClusterInfo;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env.TEST_KUBECONFIG;
  if (external) {
    const kc = new KubeConfig();
    kc.loadFromFile(external);
    const server = kc.getCurrentCluster()?.server;
    if (!server) throw new Error(`TEST_KUBECONFIG=${external} has no current cluster`);
    project.provide('cluster', { server, adminKubeconfig: external });
    return async () => {};
  }
  const started = Date.now();
  // With Coordinated Leader Election's gate on, so Leases keep spec.preferredHolder (test/integration/handover.spec.ts).
  const plane = await ControlPlane.start({ coordinatedLeaderElection: true });
  console.error(`control plane ready at ${plane.server} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  project.provide('cluster', plane.info);
  return () => plane.stop();
}
