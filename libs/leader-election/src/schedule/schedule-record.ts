/**
 * The record of a Lease's leader-only jobs, kept in one annotation: for each job, the watermark
 * below which every tick is settled (completed, failed, or skipped on purpose) and the ticks above
 * it that completed while an earlier one was still running. A successor starts from it.
 */

/** One job's settled ticks. */
export interface JobRecord {
  /** Every tick up to and including this one is settled. */
  done: Date;
  /** Ticks after `done` that are settled too (overlapping runs finish out of order). */
  also: Date[];
}

export const RECORD_VERSION = 1;

/**
 * The annotation's value: `{"v":1,"jobs":{"name":{"done":"…Z","also":["…Z"]}}}`. `handover`: the
 * fencing token of the term that wrote it as its last record, once every run of that term had
 * settled (so the ticks it leaves unsettled were cancelled, none is in flight).
 */
export function formatScheduleRecord(jobs: ReadonlyMap<string, JobRecord>, handover?: number): string {
  const out: Record<string, { done: string; also?: string[] }> = {};
  for (const [name, record] of [...jobs].sort(([a], [b]) => a.localeCompare(b))) {
    out[name] = { done: record.done.toISOString(), ...record.also.length > 0 ? { also: record.also.map((tick) => tick.toISOString()) } : {} };
  }
  return JSON.stringify({ v: RECORD_VERSION, jobs: out, ...handover === undefined ? {} : { handover } });
}

function time(text: unknown): Date | undefined {
  const date = typeof text === 'string' ? new Date(text) : undefined;
  return date && !Number.isNaN(date.getTime()) ? date : undefined;
}

/**
 * Reads the annotation tolerantly: a value edited by hand into nonsense loses only what cannot be
 * read (listed in `problems`); those jobs start afresh, as after a re-created Lease.
 */
export function parseScheduleRecord(value: string | undefined): { jobs: Map<string, JobRecord>; problems: string[]; handover?: number } {
  const jobs = new Map<string, JobRecord>();
  const problems: string[] = [];
  if (value === undefined) return { jobs, problems };
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return { jobs, problems: ['it is not JSON'] };
  }
  const body = parsed as { v?: unknown; jobs?: unknown; handover?: unknown };
  if (typeof parsed !== 'object' || parsed === null || body.v !== RECORD_VERSION || typeof body.jobs !== 'object' || body.jobs === null) {
    return { jobs, problems: [`it is not a version ${RECORD_VERSION} record`] };
  }
  for (const [name, entry] of Object.entries(body.jobs as Record<string, unknown>)) {
    const { done, also = [] } = (entry ?? {}) as { done?: unknown; also?: unknown };
    const doneAt = time(done);
    const alsoAt = Array.isArray(also) ? also.map(time) : [undefined];
    if (!doneAt || alsoAt.some((tick) => tick === undefined)) {
      problems.push(`job "${name}" has no readable ticks`);
      continue;
    }
    jobs.set(name, { done: doneAt, also: (alsoAt as Date[]).filter((tick) => tick > doneAt) });
  }
  return { jobs, problems, ...Number.isInteger(body.handover) ? { handover: body.handover as number } : {} };
}
