/**
 * Which member of a set leads which election, computed by every replica from the membership alone:
 * the same members give the same plan everywhere, with no coordinator.
 *
 * Rendezvous hashing with bounded load: every (election, member) pair has a score, a hash of the
 * two; the pairs are taken from the highest score down, each election going to the first member
 * that still has room. Room is M / N elections per member, rounded so the loads differ by at most
 * one. A member that joins takes the elections it scores highest on, up to its share; one that
 * leaves frees only its own (a few more can move when a load limit shifts: the bench counts them
 * against the minimum).
 */
import { createHash } from 'node:crypto';

/** The score of a pair: 48 bits of SHA-256, exact in a double. */
function score(set: string, election: string, member: string): number {
  return createHash('sha256').update(`${set}\0${election}\0${member}`).digest().readUIntBE(0, 6);
}

/** Election → member, for every election once there is a member; empty without members. */
export function assignElections(set: string, elections: readonly string[], members: readonly string[]): Map<string, string> {
  const plan = new Map<string, string>();
  const unique = [...new Set(members)];
  if (unique.length === 0) return plan;
  const pairs = elections.flatMap((election) => unique.map((member) => ({ election, member, score: score(set, election, member) })));
  // Ties (a 48-bit collision) broken by name, so every replica sorts alike.
  pairs.sort((a, b) => b.score - a.score || (a.election < b.election ? -1 : a.election > b.election ? 1 : a.member < b.member ? -1 : 1));
  const base = Math.floor(elections.length / unique.length);
  // How many members may take one more than base.
  let roomAbove = elections.length % unique.length;
  const load = new Map<string, number>();
  for (const { election, member } of pairs) {
    if (plan.has(election)) continue;
    const taken = load.get(member) ?? 0;
    if (taken >= base) {
      if (taken > base || roomAbove === 0) continue;
      roomAbove--;
    }
    plan.set(election, member);
    load.set(member, taken + 1);
  }
  return plan;
}

