// `node scripts/assignment-moves.ts`: how many elections assignElections() moves when one member
// joins or leaves, against the fewest a balanced plan needs, over 200 sets per size (the figures in
// README's sets section and docs/design/14-many-elections.md). Pure computation, no cluster.
import { assignElections } from '../libs/leader-election/src/core/assignment.ts';

const SETS = 200;
const names = (count: number): string[] => Array.from({ length: count }, (_, i) => String(i));
const moves = (before: Map<string, string>, after: Map<string, string>): number =>
  [...after].filter(([election, member]) => before.get(election) !== member).length;

for (const [elections, members] of [[12, 3], [12, 6], [100, 5], [1000, 10]] as const) {
  let joined = 0;
  let left = 0;
  let atMinimum = 0;
  // A joining member must take floor(M / (N + 1)) at least; a leaving one frees what it held.
  const joinMinimum = Math.floor(elections / (members + 1));
  let leaveMinimum = 0;
  for (let set = 0; set < SETS; set++) {
    const ids = Array.from({ length: members }, (_, i) => `pod-${set}-${i}`);
    const before = assignElections(`set-${set}`, names(elections), ids);
    const join = moves(before, assignElections(`set-${set}`, names(elections), [...ids, `new-${set}`]));
    joined += join;
    if (join === joinMinimum) atMinimum++;
    left += moves(before, assignElections(`set-${set}`, names(elections), ids.slice(1)));
    leaveMinimum += [...before.values()].filter((member) => member === ids[0]).length;
  }
  console.log(`${elections} elections, ${members} → ${members + 1} members: a join moves ${(joined / SETS).toFixed(2)} on average ` +
    `(minimum ${joinMinimum}, reached in ${atMinimum} of ${SETS}); ${members} → ${members - 1}: a leave moves ${(left / SETS).toFixed(2)} ` +
    `(minimum ${(leaveMinimum / SETS).toFixed(2)})`);
}
