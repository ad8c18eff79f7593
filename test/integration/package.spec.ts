import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { TestCluster } from '../harness/test-cluster.ts';
import { COMPAT_DIR, COMPAT_NODE, ensureCompatStack } from '../compat/stack.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const LIBRARY = join(ROOT, 'libs', 'leader-election');

// A Nest app outside the workspace, written the way a user would, in plain JavaScript: an @OnLeader
// method, the Terminus indicator from the subpath export, a leader-only @Interval, and a graceful close. Nest 12 apps are ES
// modules; Nest 11 apps are mostly CommonJS, which loads this ESM-only package with require().
const IMPORTS: Array<[string, string[]]> = [
  ['reflect-metadata', []],
  ['@nestjs/common', ['Inject', 'Injectable', 'Module']],
  ['@nestjs/core', ['NestFactory']],
  ['@nestjs/terminus', ['HealthCheckService', 'TerminusModule']],
  ['@nestjs/schedule', ['Interval', 'ScheduleModule']],
  ['nestjs-lease-election', ['LeaderElectionModule', 'LeaderElectionService', 'OnLeader']],
  ['nestjs-lease-election/terminus', ['LeaderElectionHealthIndicator']],
  ['nestjs-lease-election/schedule', ['LeaderOnly', 'ScheduledRun', 'leaderSchedule']],
];

function imports(format: 'esm' | 'cjs'): string {
  return IMPORTS.map(([module, names]) => {
    const list = `{ ${names.join(', ')} }`;
    if (format === 'esm') return names.length ? `import ${list} from '${module}';` : `import '${module}';`;
    return names.length ? `const ${list} = require('${module}');` : `require('${module}');`;
  }).join('\n');
}

const BODY = `
let workStarted;
const started = new Promise((resolve) => { workStarted = resolve; });
let workStopped = false;

class Worker {
  async run(term) {
    workStarted(term.fencingToken);
    await new Promise((resolve) => term.signal.addEventListener('abort', resolve, { once: true }));
    workStopped = true;
  }
}
Injectable()(Worker);
OnLeader()(Worker.prototype, 'run', Object.getOwnPropertyDescriptor(Worker.prototype, 'run'));

let ticked;
const firstTick = new Promise((resolve) => { ticked = resolve; });
class Job {
  constructor(run) { this.run = run; }
  beat() { ticked(this.run.current().fencingToken); }
}
Injectable()(Job);
Inject(ScheduledRun)(Job, undefined, 0);
for (const decorate of [Interval('beat', 200), LeaderOnly()]) decorate(Job.prototype, 'beat', Object.getOwnPropertyDescriptor(Job.prototype, 'beat'));

class AppModule {}
Module({
  imports: [TerminusModule, ScheduleModule.forRoot(), LeaderElectionModule.forRoot({
    leaseName: 'packaged', namespace: process.env.NAMESPACE, identity: 'from-tarball',
    leaseDuration: 3000, renewDeadline: 2000, retryPeriod: 500, extensions: [leaderSchedule()],
  })],
  providers: [Worker, Job, LeaderElectionHealthIndicator],
})(AppModule);

async function main() {
  const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
  const election = app.get(LeaderElectionService);
  const term = await election.whenLeader();
  const workToken = await started;
  const tickToken = await firstTick;
  const indicator = app.get(LeaderElectionHealthIndicator);
  const health = await app.get(HealthCheckService).check([() => indicator.isHealthy()]);
  await app.close();
  console.log(JSON.stringify({
    node: process.versions.node.split('.')[0], elected: election.identity, fencingToken: term.fencingToken,
    workToken, tickToken, health: health.status, workStopped,
  }));
}
main().catch((error) => { console.error(error); process.exitCode = 1; });
`;

// What a TypeScript user of the stack compiles: the exports map's types, in the app's module format.
const TYPED = `
import { LeaderElectionModule, LeaderElectionService, OnLeader, type Term } from 'nestjs-lease-election';
import { LeaderElectionHealthIndicator } from 'nestjs-lease-election/terminus';
import { LeaderOnly, leaderSchedule, type Tick } from 'nestjs-lease-election/schedule';
import { Cron } from '@nestjs/schedule';

export class Reports {
  @Cron('0 * * * * *', { name: 'reports', timeZone: 'UTC' })
  @LeaderOnly({ missed: 'skip' })
  send(): void {}
}
export const scheduled = leaderSchedule({ everyJob: 'default', record: 'on-renewal' });
export const tickId = (tick: Tick): string => tick.id;

export class Worker {
  @OnLeader({ onError: 'step-down' })
  async run(term: Term): Promise<number> {
    return term.signal.aborted ? -1 : term.fencingToken;
  }
}
export const leaderElection = LeaderElectionModule.forRoot({ leaseName: 'typed', leaseDuration: 15_000 });
export const isLeader = (service: LeaderElectionService): boolean => service.isLeader();
export type Health = Awaited<ReturnType<LeaderElectionHealthIndicator['isHealthy']>>;
`;
const TSCONFIG = {
  compilerOptions: {
    module: 'nodenext', target: 'es2022', strict: true, noEmit: true, skipLibCheck: true, types: [],
    experimentalDecorators: true, emitDecoratorMetadata: true,
  },
};

interface Stack {
  name: string;
  node: string;
  format: 'esm' | 'cjs';
  /** The package.json whose devDependencies pin the app's Node, Nest, client-node and TypeScript versions. */
  versionsFrom: string;
}

const rootVersions = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).devDependencies as Record<string, string>;

// The main run's stack, and the oldest one the peer ranges promise (installed by test/compat).
const STACKS: Stack[] = [
  { name: 'Node 24, Nest 12, client-node 2, ESM', node: process.execPath, format: 'esm', versionsFrom: join(ROOT, 'package.json') },
  { name: 'Node 20, Nest 11, client-node 1.4, CommonJS', node: COMPAT_NODE, format: 'cjs', versionsFrom: join(COMPAT_DIR, 'package.json') },
];
const PINNED = ['@nestjs/common', '@nestjs/core', '@nestjs/schedule', '@nestjs/terminus', '@nestjs/testing', '@kubernetes/client-node', 'typescript'];

/** README's user test of the /testing kit, taken from README itself so the two cannot drift apart. */
function readmeUserTest(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const block = /<!-- user-test:[^\n]*-->\n```ts\n([\s\S]*?)\n```/.exec(readme);
  if (!block) throw new Error('README.md has no <!-- user-test --> block');
  return block[1];
}

describe('the published package', () => {
  const cluster = new TestCluster(inject('cluster'));
  const work = mkdtempSync(join(tmpdir(), 'nestjs-lease-election-pack-'));
  let tarball: string;
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  beforeAll(() => {
    ensureCompatStack();
    // Packed from a fresh build of the sources in a folder of its own (as the package's prepack
    // does for a publish), so neither a stale file in the workspace's dist nor a rebuild of it
    // while other suites use it can affect the result.
    const staging = join(work, 'staging');
    mkdirSync(staging);
    cpSync(join(LIBRARY, 'package.json'), join(staging, 'package.json'));
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(LIBRARY, 'tsconfig.lib.json'),
      '--outDir', join(staging, 'dist'), '--tsBuildInfoFile', join(work, 'library.tsbuildinfo')], { stdio: ['ignore', 'inherit', 'inherit'] });
    execFileSync('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', work], { cwd: staging, stdio: ['ignore', 'ignore', 'inherit'] });
    tarball = readdirSync(work).find((file) => file.endsWith('.tgz'))!;
  });

  it('holds the built library, its subpath exports and declarations, and nothing else', () => {
    const listing = execFileSync('tar', ['-tzf', join(work, tarball)], { encoding: 'utf8' });
    for (const entry of ['', 'core/', 'kubernetes/', 'metrics/', 'schedule/', 'terminus/', 'testing/']) {
      expect(listing).toContain(`package/dist/${entry}index.js`);
      expect(listing).toContain(`package/dist/${entry}index.d.ts`);
    }
    expect(listing).not.toMatch(/\.spec\.|src\//);
    // Every module shipped is built from a source file that exists now (none left over from a rename).
    const modules = listing.split('\n').filter((line) => line.endsWith('.js'));
    expect(modules.filter((file) => !existsSync(join(LIBRARY, 'src', file.replace(/^package\/dist\//, '').replace(/\.js$/, '.ts'))))).toEqual([]);
    expect(modules.length).toBeGreaterThan(30);
  });

  it.each(STACKS)('installs into a fresh Nest app outside the workspace and elects there: $name', async (stack) => {
    const app = join(work, stack.name.replace(/\W+/g, '-'));
    mkdirSync(app);
    const versions = JSON.parse(readFileSync(stack.versionsFrom, 'utf8')).devDependencies as Record<string, string>;
    writeFileSync(join(app, 'package.json'), JSON.stringify({
      name: 'fresh-nest-app', private: true,
      dependencies: {
        'nestjs-lease-election': `file:../${tarball}`,
        ...Object.fromEntries(PINNED.map((name) => [name, versions[name]])),
        rxjs: rootVersions.rxjs,
        'reflect-metadata': rootVersions['reflect-metadata'],
      },
    }));
    const [main, typed, userTest] = stack.format === 'esm'
      ? ['main.mjs', 'typed.mts', 'leadership.test.mts'] : ['main.cjs', 'typed.cts', 'leadership.test.cts'];
    writeFileSync(join(app, main), `${imports(stack.format)}\n${BODY}`);
    writeFileSync(join(app, typed), TYPED);
    writeFileSync(join(app, userTest), readmeUserTest());
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify(TSCONFIG));
    // Peer ranges are checked as a user's npm would: a version outside them fails the install.
    const install = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { cwd: app, encoding: 'utf8' });
    expect({ status: install.status, stderr: install.stderr }).toMatchObject({ status: 0 });
    const typecheck = spawnSync(stack.node, [join('node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], { cwd: app, encoding: 'utf8' });
    expect({ status: typecheck.status, stdout: typecheck.stdout, error: typecheck.error }).toMatchObject({ status: 0 });

    // README's test of the /testing kit, compiled and run as its user would: no cluster involved.
    const compile = spawnSync(stack.node, [join('node_modules', 'typescript', 'bin', 'tsc'), '-p', '.', '--noEmit', 'false', '--outDir', 'out'],
      { cwd: app, encoding: 'utf8' });
    expect({ status: compile.status, stdout: compile.stdout }).toMatchObject({ status: 0 });
    const userRun = spawnSync(stack.node, ['--test', '--test-reporter=tap', join('out', userTest.replace(/ts$/, 'js'))], { cwd: app, encoding: 'utf8', timeout: 60_000 });
    expect({ status: userRun.status, stdout: userRun.stdout, stderr: userRun.stderr }).toMatchObject({ status: 0 });
    expect(userRun.stdout).toMatch(/# pass 1\b/);

    const namespace = await cluster.createNamespace('packaged');
    const run = spawnSync(stack.node, [main], {
      cwd: app, encoding: 'utf8', timeout: 60_000,
      env: { ...process.env, KUBECONFIG: cluster.info.adminKubeconfig, NAMESPACE: namespace },
    });
    expect({ status: run.status, stderr: run.stderr, error: run.error }).toMatchObject({ status: 0 });
    expect(JSON.parse(run.stdout.trim())).toEqual({
      node: versions.node.split('.')[0],
      elected: 'from-tarball', fencingToken: 0, workToken: 0, tickToken: 0, health: 'ok', workStopped: true,
    });
  });
});
