// `npm run measure:control-plane`: warm start time to /readyz and memory of the local control plane.
// (The cold build time is printed by the first `npm test` or `npm run cluster` on a fresh machine.)
import { readdirSync, readFileSync } from 'node:fs';
import { ControlPlane } from '../test/harness/control-plane.ts';
import { ensureBinaries } from '../test/harness/binaries.ts';

function rssOfGroup(group: number | undefined): number {
  if (group === undefined) return 0;
  let total = 0;
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) !== group) continue;
      const rss = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
      total += rss ? Number(rss[1]) * 1024 : 0;
    } catch {
      // The process ended while we looked.
    }
  }
  return total;
}

const binaries = ensureBinaries();
const runs = Number(process.argv[2] ?? 5);
const starts: number[] = [];
let memory = { etcd: 0, apiserver: 0 };
for (let i = 0; i < runs; i++) {
  const started = performance.now();
  const plane = await ControlPlane.start({ binaries });
  starts.push(performance.now() - started);
  if (i === runs - 1) {
    await new Promise((resolve) => setTimeout(resolve, 5_000)); // let start-up controllers settle
    const groups = plane.processGroups;
    memory = { etcd: rssOfGroup(groups.etcd), apiserver: rssOfGroup(groups['kube-apiserver']) };
  }
  await plane.stop();
}
starts.sort((a, b) => a - b);
const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(0)} MB`;
console.log(`warm start to /readyz over ${runs} runs: median ${(starts[Math.floor(runs / 2)] / 1000).toFixed(2)} s, ` +
  `min ${(starts[0] / 1000).toFixed(2)} s, max ${(starts[runs - 1] / 1000).toFixed(2)} s`);
console.log(`memory (RSS) 5 s after ready: kube-apiserver ${mb(memory.apiserver)}, etcd ${mb(memory.etcd)}, total ${mb(memory.apiserver + memory.etcd)}`);
