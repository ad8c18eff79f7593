/** The example's flags, each falling back to the environment, as the original Go example's were. */
import { parseArgs } from 'node:util';

export interface ExampleConfig {
  kubeConfig?: string;
  identity?: string;
  port: number;
  leaseName: string;
  namespace?: string;
  leaseDuration?: number;
  renewDeadline?: number;
  retryPeriod?: number;
  lossPolicy?: 'exit' | 'rejoin';
  /** How the leader's loop decides it may still act; see reconciler.service.ts. */
  workStyle: WorkStyle;
}

export const WORK_STYLES = ['valid', 'signal'] as const;
export type WorkStyle = (typeof WORK_STYLES)[number];

export const USAGE = `usage: example [flags]
  --kube-config, --kubeconfig PATH  kubeconfig (env KUBECONFIG; default ~/.kube/config, then in-cluster)
  --id ID                           identity (env POD_NAME; default hostname + random suffix)
  --port PORT                       HTTP port: /health, /healthz, /readyz, /metrics (env PORT; default 8080, 0 = any free port)
  --lease-name NAME                 Lease name (env LEASE_NAME; default example-controller)
  --namespace NS                    namespace (env POD_NAMESPACE; default the pod's or the context's)
  --lease-duration SECONDS          default 15 (env LEASE_DURATION)
  --renew-deadline SECONDS          default 10 (env RENEW_DEADLINE)
  --retry-period SECONDS            default 2 (env RETRY_PERIOD)
  --loss-policy exit|rejoin         after losing leadership involuntarily (env LOSS_POLICY; default exit)
  --work-style valid|signal         how the leader's loop checks it still leads (env WORK_STYLE; default valid):
                                    valid = term.isValid() before each pass, signal = only term.signal`;

function workStyle(value: string): WorkStyle {
  if ((WORK_STYLES as readonly string[]).includes(value)) return value as WorkStyle;
  throw new Error(`--work-style must be valid or signal, got ${JSON.stringify(value)}`);
}

function seconds(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0) throw new Error(`--${flag} must be a positive number of seconds, got ${JSON.stringify(value)}`);
  return Math.round(parsed * 1000);
}

function lossPolicy(value: string | undefined): 'exit' | 'rejoin' | undefined {
  if (value === undefined || value === 'exit' || value === 'rejoin') return value;
  throw new Error(`--loss-policy must be exit or rejoin, got ${JSON.stringify(value)}`);
}

export function parseConfig(argv: string[], env: NodeJS.ProcessEnv): ExampleConfig {
  const { values } = parseArgs({
    args: argv,
    options: {
      'kube-config': { type: 'string' },
      kubeconfig: { type: 'string' },
      id: { type: 'string' },
      port: { type: 'string' },
      'lease-name': { type: 'string' },
      namespace: { type: 'string' },
      'lease-duration': { type: 'string' },
      'renew-deadline': { type: 'string' },
      'retry-period': { type: 'string' },
      'loss-policy': { type: 'string' },
      'work-style': { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) throw new Error(USAGE);
  const portText = values.port ?? (env.PORT || undefined) ?? '8080';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) throw new Error(`--port must be a TCP port, got ${JSON.stringify(portText)}`);
  return {
    kubeConfig: values['kube-config'] ?? values.kubeconfig ?? (env.KUBECONFIG || undefined),
    identity: values.id ?? (env.POD_NAME || undefined),
    port,
    leaseName: values['lease-name'] ?? env.LEASE_NAME ?? 'example-controller',
    namespace: values.namespace ?? (env.POD_NAMESPACE || undefined),
    leaseDuration: seconds('lease-duration', values['lease-duration'] ?? env.LEASE_DURATION),
    renewDeadline: seconds('renew-deadline', values['renew-deadline'] ?? env.RENEW_DEADLINE),
    retryPeriod: seconds('retry-period', values['retry-period'] ?? env.RETRY_PERIOD),
    lossPolicy: lossPolicy(values['loss-policy'] ?? env.LOSS_POLICY),
    workStyle: workStyle(values['work-style'] ?? (env.WORK_STYLE || 'valid')),
  };
}
