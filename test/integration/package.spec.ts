import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { TestCluster } from '../harness/test-cluster.ts';

const LIBRARY = resolve(import.meta.dirname, '..', '..', 'libs', 'leader-election');

// A Nest app outside the workspace, written the way a user would, in plain JavaScript.
const MAIN = `
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { LeaderElectionModule, LeaderElectionService } from 'nestjs-lease-election';

class AppModule {}
Module({ imports: [LeaderElectionModule.forRoot({
  leaseName: 'packaged', namespace: process.env.NAMESPACE, identity: 'from-tarball',
  leaseDuration: 3000, renewDeadline: 2000, retryPeriod: 500,
})] })(AppModule);

const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
const term = await app.get(LeaderElectionService).whenLeader();
console.log(JSON.stringify({ elected: app.get(LeaderElectionService).identity, fencingToken: term.fencingToken }));
await app.close();
`;

describe('the published package', () => {
  const cluster = new TestCluster(inject('cluster'));
  const work = mkdtempSync(join(tmpdir(), 'nestjs-lease-election-pack-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('packs, installs into a fresh Nest app outside the workspace, and elects there', async () => {
    execFileSync('npm', ['pack', '--silent', '--pack-destination', work], { cwd: LIBRARY, stdio: ['ignore', 'ignore', 'inherit'] });
    const tarball = readdirSync(work).find((file) => file.endsWith('.tgz'))!;
    const listing = execFileSync('tar', ['-tzf', join(work, tarball)], { encoding: 'utf8' });
    expect(listing).toContain('package/dist/index.js');
    expect(listing).toContain('package/dist/index.d.ts');
    expect(listing).toContain('package/dist/terminus/index.js');
    expect(listing).not.toMatch(/\.spec\.|src\/|testing\//);

    const app = join(work, 'app');
    execFileSync('mkdir', ['-p', app]);
    const versions = (await import('../../package.json', { with: { type: 'json' } })).default.devDependencies as Record<string, string>;
    writeFileSync(join(app, 'package.json'), JSON.stringify({
      name: 'fresh-nest-app', private: true, type: 'module',
      dependencies: Object.fromEntries([
        ['nestjs-lease-election', `file:../${tarball}`],
        ...['@nestjs/common', '@nestjs/core', '@kubernetes/client-node', 'rxjs', 'reflect-metadata'].map((name) => [name, versions[name]]),
      ]),
    }));
    writeFileSync(join(app, 'main.mjs'), MAIN);
    const install = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { cwd: app, encoding: 'utf8' });
    expect({ status: install.status, stderr: install.stderr }).toMatchObject({ status: 0 });

    const namespace = await cluster.createNamespace('packaged');
    const run = spawnSync(process.execPath, ['main.mjs'], {
      cwd: app, encoding: 'utf8', timeout: 60_000,
      env: { ...process.env, KUBECONFIG: cluster.info.adminKubeconfig, NAMESPACE: namespace },
    });
    expect({ status: run.status, stderr: run.stderr }).toMatchObject({ status: 0 });
    expect(JSON.parse(run.stdout.trim())).toEqual({ elected: 'from-tarball', fencingToken: 0 });
  });
});
