// A small SVG bar chart of the benchmark results, for the README: ours next to client-go.
type Results = Record<string, unknown>;

const OURS = '#2f7d5b';
const THEIRS = '#8a8f98';

interface Group {
  title: string;
  unit: string;
  bars: Array<{ label: string; ours: number; theirs: number }>;
}

function groups(results: Results): Group[] {
  const stat = (key: string, field: string): number => Number((results[key] as Record<string, number> | undefined)?.[field] ?? 0);
  const both = (key: string, field: string) => ({ ours: stat(`${key}:nestjs-lease-election`, field), theirs: stat(`${key}:client-go`, field) });
  const schedule = results.schedule as Record<string, Record<string, number> | undefined> | undefined;
  const perCrash = (field: string) => ({
    ours: Number(schedule?.['nestjs-lease-election']?.[field] ?? 0), theirs: Number(schedule?.['client-go']?.[field] ?? 0),
  });
  return [
    { title: 'Graceful handover (SIGTERM → successor works)', unit: 'ms', bars: ['p50', 'p95', 'p99'].map((p) => ({ label: p, ...both('handover', p) })) },
    { title: 'Crash failover: overshoot past lease expiry', unit: 'ms', bars: ['p50', 'p95', 'p99'].map((p) => ({ label: p, ...both('failover', p) })) },
    {
      title: 'Apiserver requests per minute (1 leader + 9 followers)', unit: 'req/min',
      bars: [{ label: 'all 10', ...both('load10', 'totalPerMinute') }],
    },
    ...many(results),
    ...schedule ? [{
      title: 'Leader-only job every second: ticks per leader crash (SIGKILL)', unit: 'ticks',
      bars: [{ label: 'missed', ...perCrash('missedPerCrash') }, { label: 'lost', ...perCrash('lostPerCrash') }],
    }] : [],
  ];
}

const round = (value: number, digits: number): number => Number(value.toFixed(digits));

/** The many-elections section: per Lease count, renew p99 and CPU per renewal. */
function many(results: Results): Group[] {
  type Row = { leases: number } & Record<'nestjs-lease-election' | 'client-go', Record<string, number>>;
  const rows = results.manyElections as Row[] | undefined;
  if (!rows?.length) return [];
  const bars = (field: string, digits: number) => rows.map((row) => ({
    label: `${row.leases} leases`, ours: round(row['nestjs-lease-election'][field], digits), theirs: round(row['client-go'][field], digits),
  }));
  return [
    { title: 'Many elections in one process: renew p99', unit: 'ms', bars: bars('renewP99', 1) },
    { title: 'Many elections in one process: CPU per renewal', unit: 'ms', bars: bars('cpuMsPerRenewal', 3) },
  ];
}

export function renderChart(results: Results): string {
  const width = 760;
  const rowHeight = 22;
  const parts: string[] = [];
  let y = 40;
  for (const group of groups(results)) {
    const max = Math.max(1, ...group.bars.flatMap((bar) => [bar.ours, bar.theirs]));
    parts.push(`<text x="10" y="${y}" font-weight="bold">${group.title}</text>`);
    y += 10;
    for (const bar of group.bars) {
      for (const [who, value, color] of [['ours', bar.ours, OURS], ['client-go', bar.theirs, THEIRS]] as const) {
        const length = Math.max(1, (value / max) * 480);
        parts.push(`<text x="10" y="${y + 15}">${bar.label} ${who}</text>`);
        parts.push(`<rect x="130" y="${y + 3}" width="${length.toFixed(1)}" height="16" fill="${color}"/>`);
        parts.push(`<text x="${(136 + length).toFixed(1)}" y="${y + 15}">${value} ${group.unit}</text>`);
        y += rowHeight;
      }
    }
    y += 24;
  }
  const header = `<text x="10" y="20" font-size="12" fill="#555">nestjs-lease-election (green) vs client-go (grey), ${String(results.date ?? '')}</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" font-family="sans-serif" font-size="13">` +
    `<rect width="100%" height="100%" fill="white"/>${header}${parts.join('')}</svg>\n`;
}
