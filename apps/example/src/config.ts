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
  /** Leader-only scheduled jobs (tick-jobs.service.ts) with this missed-tick policy; off when undefined. */
  schedule?: 'catch-up' | 'skip';
  /** How long each run of a scheduled job works, in ms. */
  tickWorkMs: number;
  /** How a run of a scheduled job reacts to its term ending; see tick-jobs.service.ts. */
  tickStyle: TickStyle;
  /** A set of this many elections, 'shards', shared out over the replicas (shard-worker.service.ts); off when undefined. */
  shards?: number;
  /** 'rollout': on SIGTERM hand leadership to a Ready pod of the newest revision instead of releasing it. */
  handoverOnShutdown?: 'rollout';
  /** Coordinated leader election: this binaryVersion (and emulationVersion) in a LeaseCandidate; off when undefined. */
  coordinated?: string;
}

export const TICK_STYLES = ['signal', 'valid', 'ignore'] as const;
export type TickStyle = (typeof TICK_STYLES)[number];

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
                                    valid = term.isValid() before each pass, signal = only term.signal
  --schedule catch-up|skip          run the leader-only jobs 'tick' (cron, every second, UTC) and 'heartbeat'
                                    (every 1.5 s), with this policy for missed ticks (env SCHEDULE; default off)
  --tick-work-ms MS                 how long each run works (env TICK_WORK_MS; default 300)
  --tick-style signal|valid|ignore  how a run meets the end of its term (env TICK_STYLE; default signal):
                                    signal = rejects when term.signal aborts, valid = checks term.isValid()
                                    every 50 ms and throws, ignore = finishes its work regardless
  --shards N                        also run a set of N elections, shards-0 … shards-(N-1), shared out over the
                                    replicas, each leader working on its shards (env SHARDS; default off)
  --handover-on-shutdown rollout    on SIGTERM, hand leadership to a Ready pod of the same Deployment, of
                                    another revision first, instead of releasing it; needs pods get and list
                                    (env HANDOVER_ON_SHUTDOWN; default off)
  --coordinated VERSION             coordinated leader election: announce a LeaseCandidate with this binary
                                    and emulation version (semver, e.g. 1.4.2) and lead only when the apiserver
                                    names this instance; needs leasecandidates in the Role (env COORDINATED_VERSION;
                                    default off)`;

function oneOf<T extends string>(flag: string, allowed: readonly T[], value: string | undefined): T | undefined {
  if (value === undefined || (allowed as readonly string[]).includes(value)) return value as T | undefined;
  throw new Error(`--${flag} must be ${allowed.join(' or ')}, got ${JSON.stringify(value)}`);
}

function seconds(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0) throw new Error(`--${flag} must be a positive number of seconds, got ${JSON.stringify(value)}`);
  return Math.round(parsed * 1000);
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
      schedule: { type: 'string' },
      'tick-work-ms': { type: 'string' },
      'tick-style': { type: 'string' },
      shards: { type: 'string' },
      'handover-on-shutdown': { type: 'string' },
      coordinated: { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) throw new Error(USAGE);
  const portText = values.port ?? (env.PORT || undefined) ?? '8080';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) throw new Error(`--port must be a TCP port, got ${JSON.stringify(portText)}`);
  const tickWorkText = values['tick-work-ms'] ?? (env.TICK_WORK_MS || undefined) ?? '300';
  if (!/^\d+$/.test(tickWorkText)) throw new Error(`--tick-work-ms must be a whole number of milliseconds, got ${JSON.stringify(tickWorkText)}`);
  const shardsText = values.shards ?? (env.SHARDS || undefined);
  if (shardsText !== undefined && !/^[1-9]\d*$/.test(shardsText)) throw new Error(`--shards must be a whole number from 1, got ${JSON.stringify(shardsText)}`);
  return {
    kubeConfig: values['kube-config'] ?? values.kubeconfig ?? (env.KUBECONFIG || undefined),
    identity: values.id ?? (env.POD_NAME || undefined),
    port,
    leaseName: values['lease-name'] ?? env.LEASE_NAME ?? 'example-controller',
    namespace: values.namespace ?? (env.POD_NAMESPACE || undefined),
    leaseDuration: seconds('lease-duration', values['lease-duration'] ?? env.LEASE_DURATION),
    renewDeadline: seconds('renew-deadline', values['renew-deadline'] ?? env.RENEW_DEADLINE),
    retryPeriod: seconds('retry-period', values['retry-period'] ?? env.RETRY_PERIOD),
    lossPolicy: oneOf('loss-policy', ['exit', 'rejoin'] as const, values['loss-policy'] ?? env.LOSS_POLICY),
    workStyle: oneOf('work-style', WORK_STYLES, values['work-style'] ?? (env.WORK_STYLE || undefined)) ?? 'valid',
    schedule: oneOf('schedule', ['catch-up', 'skip'] as const, values.schedule ?? (env.SCHEDULE || undefined)),
    tickWorkMs: Number(tickWorkText),
    tickStyle: oneOf('tick-style', TICK_STYLES, values['tick-style'] ?? (env.TICK_STYLE || undefined)) ?? 'signal',
    shards: shardsText === undefined ? undefined : Number(shardsText),
    handoverOnShutdown: oneOf('handover-on-shutdown', ['rollout'] as const, values['handover-on-shutdown'] ?? (env.HANDOVER_ON_SHUTDOWN || undefined)),
    coordinated: values.coordinated ?? (env.COORDINATED_VERSION || undefined),
  };
}
