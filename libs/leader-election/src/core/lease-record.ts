/**
 * The Lease record as client-go reads and writes it, and a tolerant parser: a Lease edited by hand
 * into nonsense yields a record plus a list of problems, never an exception.
 */

/** The fields of coordination.k8s.io/v1 LeaseSpec that leader election owns. */
export interface LeaseRecord {
  /** '' when nobody holds the lease. */
  holderIdentity: string;
  /** undefined when the stored value is missing or out of range; the elector then uses its own. */
  leaseDurationSeconds: number | undefined;
  acquireTime: Date | undefined;
  renewTime: Date | undefined;
  leaseTransitions: number;
}

/** A Lease as stored, loosely typed on purpose: it may have been edited by hand. */
export interface LeaseObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; [key: string]: unknown };
  spec?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface LeaseSnapshot {
  readonly resourceVersion: string;
  readonly record: LeaseRecord;
  /** What was wrong with the stored object; empty for a well-formed Lease. */
  readonly problems: readonly string[];
  /**
   * The Lease says plainly that nobody holds it (holderIdentity ''), as a release writes it. false
   * when someone holds it, and when the holder cannot be read (no spec, not a string): that may
   * be a live holder's record edited by hand.
   */
  readonly free: boolean;
  /** The object as stored, so an update keeps fields this library does not own. */
  readonly object: LeaseObject;
  /** metadata.annotations with string values (others are listed in `problems`). */
  readonly annotations: Readonly<Record<string, string>>;
}

/** Annotations to set on the Lease with a write; null removes one. */
export type AnnotationChanges = Readonly<Record<string, string | null>>;

/** `current` with `changes` applied; undefined when nothing is left. */
export function applyAnnotations(current: Readonly<Record<string, unknown>> | undefined,
  changes: AnnotationChanges | undefined): Record<string, unknown> | undefined {
  if (!changes || Object.keys(changes).length === 0) return current && { ...current };
  const merged: Record<string, unknown> = { ...current };
  for (const [key, value] of Object.entries(changes)) {
    if (value === null) delete merged[key];
    else merged[key] = value;
  }
  return Object.keys(merged).length > 0 ? merged : undefined;
}

function parseAnnotations(value: unknown, problems: string[]): Record<string, string> {
  const annotations: Record<string, string> = {};
  if (value === undefined || value === null) return annotations;
  if (typeof value !== 'object' || Array.isArray(value)) {
    problems.push(`metadata.annotations is not a map: ${JSON.stringify(value)}`);
    return annotations;
  }
  for (const [key, text] of Object.entries(value)) {
    if (typeof text === 'string') annotations[key] = text;
    else problems.push(`metadata.annotations[${JSON.stringify(key)}] is not a string`);
  }
  return annotations;
}

/** The apiserver stores leaseDurationSeconds as an int32; client-go accepts any of them from 1 up. */
const INT32_MAX = 2 ** 31 - 1;

function parseTime(value: unknown, field: string, problems: string[]): Date | undefined {
  if (value === undefined || value === null) return undefined;
  const date = typeof value === 'string' || value instanceof Date ? new Date(value) : undefined;
  if (!date || Number.isNaN(date.getTime())) {
    problems.push(`spec.${field} is not a time: ${JSON.stringify(value)}`);
    return undefined;
  }
  return date;
}

export function parseLease(object: LeaseObject): LeaseSnapshot {
  const problems: string[] = [];
  const resourceVersion = String(object.metadata?.resourceVersion ?? '');
  const spec = object.spec;
  if (spec === undefined || spec === null || typeof spec !== 'object') {
    problems.push('the Lease has no spec');
  }
  const fields = (spec && typeof spec === 'object' ? spec : {}) as Record<string, unknown>;

  let holderIdentity = '';
  let holderReadable = problems.length === 0;
  if (typeof fields.holderIdentity === 'string') holderIdentity = fields.holderIdentity;
  else if (fields.holderIdentity !== undefined && fields.holderIdentity !== null) {
    holderReadable = false;
    problems.push(`spec.holderIdentity is not a string: ${JSON.stringify(fields.holderIdentity)}`);
  }

  let leaseDurationSeconds: number | undefined;
  const duration = fields.leaseDurationSeconds;
  if (typeof duration === 'number' && Number.isInteger(duration) && duration >= 1 && duration <= INT32_MAX) {
    leaseDurationSeconds = duration;
  } else if (holderIdentity !== '') {
    problems.push(`spec.leaseDurationSeconds is ${JSON.stringify(duration)}, not a whole number of seconds from 1 to ${INT32_MAX}`);
  }

  let leaseTransitions = 0;
  const transitions = fields.leaseTransitions;
  if (typeof transitions === 'number' && Number.isInteger(transitions) && transitions >= 0 && transitions <= INT32_MAX) {
    leaseTransitions = transitions;
  } else if (transitions !== undefined && transitions !== null) {
    problems.push(`spec.leaseTransitions is ${JSON.stringify(transitions)}, not a count`);
  }

  const annotations = parseAnnotations(object.metadata?.annotations, problems);
  return {
    resourceVersion,
    object,
    annotations,
    problems,
    free: holderIdentity === '' && holderReadable,
    record: {
      holderIdentity,
      leaseDurationSeconds,
      acquireTime: parseTime(fields.acquireTime, 'acquireTime', problems),
      renewTime: parseTime(fields.renewTime, 'renewTime', problems),
      leaseTransitions,
    },
  };
}

/** MicroTime as the apiserver wants it: UTC with exactly six fractional digits. */
export function formatMicroTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** The spec fields to write for a record, with MicroTimes as `time` makes them (formatMicroTime for the wire). */
export function recordToSpec<Time>(record: LeaseRecord, time: (date: Date) => Time): { holderIdentity: string; leaseDurationSeconds: number | undefined; acquireTime: Time | undefined; renewTime: Time | undefined; leaseTransitions: number } {
  return {
    holderIdentity: record.holderIdentity,
    leaseDurationSeconds: record.leaseDurationSeconds,
    acquireTime: record.acquireTime && time(record.acquireTime),
    renewTime: record.renewTime && time(record.renewTime),
    leaseTransitions: record.leaseTransitions,
  };
}
