import { describe, expect, it } from 'vitest';
import { parseScheduleRecord, formatScheduleRecord } from './schedule-record.js';
import { cronTimetable, intervalTimetable, timeoutDelayProblem } from './timetable.js';

const iso = (date: Date | undefined): string | undefined => date?.toISOString();

function ticks(timetable: ReturnType<typeof cronTimetable>, from: string, count: number): string[] {
  const out: string[] = [];
  let at: Date | undefined = new Date(from);
  for (let i = 0; i < count && at; i++) {
    at = timetable.nextAfter(at);
    if (at) out.push(at.toISOString());
  }
  return out;
}

describe('timetables', () => {
  it('cron ticks in a time zone follow its DST rules: the skipped hour moves on, the repeated one runs once', () => {
    const daily = cronTimetable({ cronTime: '30 2 * * *', timeZone: 'Europe/Berlin' });
    // 29 March 2026: 02:30 does not exist in Berlin (clocks jump 02:00 → 03:00).
    expect(ticks(daily, '2026-03-28T00:00:00Z', 3)).toEqual(['2026-03-28T01:30:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z']);
    // 25 October 2026: 02:30 happens twice; the job runs once.
    expect(ticks(daily, '2026-10-24T00:00:00Z', 3)).toEqual(['2026-10-24T00:30:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']);
  });

  it('a utcOffset is a fixed zone; every tick is strictly after the instant asked about', () => {
    const hourly = cronTimetable({ cronTime: '0 0 * * * *', utcOffset: 90 });
    // UTC+01:30: the top of each local hour is half past in UTC.
    expect(ticks(hourly, '2026-01-01T12:00:00.000Z', 2)).toEqual(['2026-01-01T12:30:00.000Z', '2026-01-01T13:30:00.000Z']);
    const everySecond = cronTimetable({ cronTime: '* * * * * *', timeZone: 'UTC' });
    expect(iso(everySecond.nextAfter(new Date('2026-01-01T12:00:00.000Z')))).toBe('2026-01-01T12:00:01.000Z');
    expect(iso(everySecond.nextAfter(new Date('2026-01-01T12:00:00.999Z')))).toBe('2026-01-01T12:00:01.000Z');
  });

  it('a date is one tick; an interval is a grid from the epoch, the same on every replica', () => {
    const once = cronTimetable({ cronTime: new Date('2026-05-01T00:00:00Z') });
    expect(iso(once.nextAfter(new Date('2026-04-30T00:00:00Z')))).toBe('2026-05-01T00:00:00.000Z');
    expect(once.nextAfter(new Date('2026-05-01T00:00:00Z'))).toBeUndefined();
    const interval = intervalTimetable(1500);
    expect(iso(interval.nextAfter(new Date(3000)))).toBe(iso(new Date(4500)));
    expect(iso(interval.nextAfter(new Date(3001)))).toBe(iso(new Date(4500)));
  });

  it('bad input is refused with the reason, when the job is declared', () => {
    expect(() => cronTimetable({ cronTime: '61 * * * * *', timeZone: 'UTC' })).toThrow("cron '61 * * * * *' in UTC: Field value (61) is out of range");
    expect(() => cronTimetable({ cronTime: '* * * * * *', timeZone: 'Mars/Olympus' })).toThrow("cron '* * * * * *' in Mars/Olympus: Invalid timezone.");
    expect(() => cronTimetable({ cronTime: '* * * * * *', timeZone: 'UTC', utcOffset: 60 })).toThrow('timeZone and utcOffset exclude each other');
    expect(() => cronTimetable({ cronTime: new Date('nonsense') })).toThrow('the cron date is not a valid date');
    expect(() => intervalTimetable(0)).toThrow('an interval must be from 1 ms to 2147483647 ms (24.8 days, the longest Node\'s timers take), got 0');
    // Past Node's timer limit: @Interval's setInterval would fire every millisecond; past the Date range the next tick is no date at all.
    expect(() => intervalTimetable(2 ** 31)).toThrow('got 2147483648');
    expect(() => intervalTimetable(1e16)).toThrow('got 10000000000000000');
    expect(timeoutDelayProblem(2 ** 31 - 1)).toBeUndefined();
    expect(timeoutDelayProblem(2 ** 31)).toBe("needs a delay from 0 to 2147483647 ms (24.8 days, the longest Node's timers take), got 2147483648");
    expect(timeoutDelayProblem(-1)).toContain('got -1');
  });
});

describe('the schedule record', () => {
  it('round-trips, and reads a record edited by hand into nonsense without failing: those jobs start afresh', () => {
    const jobs = new Map([['b', { done: new Date(2000), also: [new Date(4000)] }], ['a', { done: new Date(1000), also: [] }]]);
    expect(parseScheduleRecord(formatScheduleRecord(jobs)).jobs).toEqual(new Map([...jobs].sort()));
    expect(parseScheduleRecord('{not json').problems).toEqual(['it is not JSON']);
    expect(parseScheduleRecord('{"v":2,"jobs":{}}').problems).toEqual(['it is not a version 1 record']);
    const partly = parseScheduleRecord('{"v":1,"jobs":{"ok":{"done":"2026-01-01T00:00:00.000Z"},"bad":{"done":"yesterday"},"worse":null}}');
    expect([...partly.jobs.keys()]).toEqual(['ok']);
    expect(partly.problems).toEqual(['job "bad" has no readable ticks', 'job "worse" has no readable ticks']);
  });
});
