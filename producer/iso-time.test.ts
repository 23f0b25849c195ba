import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { daysFromCivil, parseIsoTime } from './iso-time.js';
import { PG_MIN_TIMESTAMP_MS } from './validate.js';

// Years 0 to 99 through Date.UTC land in 1900 to 1999: set the year apart.
const utc = (y: number, mo: number, d: number, h = 0, mi = 0, s = 0, ms = 0) => {
  const date = new Date(Date.UTC(2000, mo - 1, d, h, mi, s, ms));
  date.setUTCFullYear(y);
  return date.getTime();
};

describe('parseIsoTime: what it accepts', () => {
  it.each([
    // No offset is UTC, never the host's zone.
    ['2016-03-13T06:00:00', utc(2016, 3, 13, 6)],
    ['2016-03-13T06:00:00Z', utc(2016, 3, 13, 6)],
    ['2016-03-13t06:00:00z', utc(2016, 3, 13, 6)],
    // RFC 3339 lets a space stand for the T: CSV exports write one.
    ['2016-03-13 06:00:00', utc(2016, 3, 13, 6)],
    ['2016-03-13T06:00', utc(2016, 3, 13, 6)],
    // A date alone is its midnight UTC (pandas writes midnights so).
    ['2024-01-01', utc(2024, 1, 1)],
    // Leap days: every fourth year, not every hundredth, every four hundredth.
    ['2024-02-29T12:30:00Z', utc(2024, 2, 29, 12, 30)],
    ['2000-02-29', utc(2000, 2, 29)],
    ['2023-03-01T00:00:00', utc(2023, 3, 1)],
    // 24:00 is the end of the day: the next day's midnight, across a year.
    ['2024-12-31T24:00:00', utc(2025, 1, 1)],
    ['2024-02-28T24:00', utc(2024, 2, 29)],
    ['2024-12-31T24:00:00.000Z', utc(2025, 1, 1)],
    // Fractions: digits past the millisecond are cut, never rounded up.
    ['2024-01-01T00:00:00.1', utc(2024, 1, 1, 0, 0, 0, 100)],
    ['2024-01-01T00:00:00.12Z', utc(2024, 1, 1, 0, 0, 0, 120)],
    ['2024-01-01T00:00:00.123456789Z', utc(2024, 1, 1, 0, 0, 0, 123)],
    ['2024-12-31T23:59:59.9999999', utc(2024, 12, 31, 23, 59, 59, 999)],
    // Offsets: the instant is the same, written from another zone.
    ['2024-06-01T12:00:00+05:30', utc(2024, 6, 1, 6, 30)],
    ['2024-06-01T12:00:00-03:00', utc(2024, 6, 1, 15)],
    ['2024-06-01T00:15:00+05:45', utc(2024, 5, 31, 18, 30)],
    ['2024-06-01T12:00:00+00', utc(2024, 6, 1, 12)],
    ['2024-06-01 12:00:00.5-00:00', utc(2024, 6, 1, 12, 0, 0, 500)],
    ['2024-01-01T00:00:00+14:00', utc(2023, 12, 31, 10)],
    ['2024-01-01T00:00:00-23:59', utc(2024, 1, 1, 23, 59)],
    // Years Date.UTC would take for 19xx, and the six-digit years of toISOString.
    ['0099-01-01T00:00:00Z', utc(99, 1, 1)],
    ['0000-03-01', utc(0, 3, 1)],
    ['-004713-11-24T00:00:00Z', PG_MIN_TIMESTAMP_MS],
    ['+275760-09-13T00:00:00.000Z', 8.64e15],
    ['+010000-01-01T00:00:00Z', utc(10_000, 1, 1)],
    // Surrounding blanks, as a CSV cell may keep them.
    ['  2024-01-01T00:00:00Z ', utc(2024, 1, 1)],
  ])('%s', (text, ms) => {
    expect(parseIsoTime(text)).toBe(ms);
  });

  it('reads back every instant toISOString writes, from 4713 BC to the end of JavaScript time', () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let i = 0; i < 5000; i++) {
      const ms = Math.floor(PG_MIN_TIMESTAMP_MS + random() * (8.64e15 - PG_MIN_TIMESTAMP_MS));
      expect(parseIsoTime(new Date(ms).toISOString())).toBe(ms);
    }
  });

  it('gives with an offset the instant Date.parse gives (an offset leaves it no zone to guess)', () => {
    for (let minutes = -23 * 60 - 59; minutes <= 23 * 60 + 59; minutes += 17) {
      const sign = minutes < 0 ? '-' : '+';
      const a = Math.abs(minutes);
      const text = `2016-03-13T02:30:00.250${sign}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
      expect(parseIsoTime(text)).toBe(Date.parse(text));
    }
  });

  it('counts days as Date.UTC does, on either side of 1970', () => {
    for (const [y, m, d] of [
      [1970, 1, 1],
      [1969, 12, 31],
      [1600, 2, 29],
      [1900, 3, 1],
      [2400, 12, 31],
      [-1, 1, 1],
    ]) {
      expect(daysFromCivil(y, m, d) * 86_400_000).toBe(utc(y, m, d));
    }
  });
});

describe('parseIsoTime: what it refuses, and why', () => {
  const NOT_ISO = 'it is not ISO-8601 (such as 2024-01-31T13:45:00Z)';
  it.each([
    // What Date.parse took for 2001-01-01 and 2001-12-01.
    ['1', NOT_ISO],
    ['12', NOT_ISO],
    ['2024', NOT_ISO],
    ['2024-01', NOT_ISO],
    ['20240101T000000Z', NOT_ISO],
    ['2024-1-1', NOT_ISO],
    ['2024-01-01T1:00', NOT_ISO],
    ['2024-01-01T', NOT_ISO],
    ['2024-01-01Z', NOT_ISO],
    ['2024-01-01T00:00:00.Z', NOT_ISO],
    ['2024-01-01T00:00:00,5', NOT_ISO],
    ['2024-01-01T00:00:00 +05:30', NOT_ISO],
    ['2024-01-01T00:00:00+0530', NOT_ISO],
    ['2024-01-01T00:00:00+05:30:00', NOT_ISO],
    ['2024-01-01T00:00:00UTC', NOT_ISO],
    ['2024/01/01 00:00:00', NOT_ISO],
    ['01/02/2024', NOT_ISO],
    ['Mon, 01 Jan 2024 00:00:00 GMT', NOT_ISO],
    ['yesterday', NOT_ISO],
    ['', NOT_ISO],
    ['２０２４-01-01', NOT_ISO],
    ['12024-01-01', NOT_ISO],
    ['2023-02-29T00:00:00', '2023-02 has no day 29'],
    ['1900-02-29', '1900-02 has no day 29'],
    ['2024-02-30', '2024-02 has no day 30'],
    ['2024-04-31', '2024-04 has no day 31'],
    ['2024-01-00', '2024-01 has no day 00'],
    ['2024-13-01', 'month 13 does not exist'],
    ['2024-00-10', 'month 00 does not exist'],
    ['2024-01-01T25:00', 'hour 25 does not exist'],
    ['2024-01-01T24:00:01', 'hour 24 is only 24:00:00, the end of the day'],
    ['2024-01-01T24:30', 'hour 24 is only 24:00:00, the end of the day'],
    ['2024-01-01T24:00:00.001', 'hour 24 is only 24:00:00, the end of the day'],
    ['2024-01-01T12:60', 'minute 60 does not exist'],
    ['2016-12-31T23:59:60Z', 'second 60 (a leap second) is not supported'],
    ['2024-01-01T12:00:61', 'second 61 does not exist'],
    ['2024-01-01T00:00:00+24:00', 'offset +24:00 is out of range'],
    ['2024-01-01T00:00:00-05:60', 'offset -05:60 is out of range'],
    ['2024-01-01T00:00:00+25', 'offset +25 is out of range'],
    ['-000000-01-01T00:00:00Z', 'year -000000 does not exist (0000 is 1 BC)'],
  ])('%j', (text, why) => {
    expect(parseIsoTime(text)).toBe(why);
  });
});

describe('the host’s time zone never changes the data', () => {
  // The producer under another TZ: a child process each (a process reads TZ
  // once), reading the CSV-born fixture through the reader and validation.
  // Before, under America/New_York 2016-03-13T06:00:00 came out 10:00 UTC.
  const here = import.meta.dirname;
  const probe = `
    const { openParquet, readRowGroups } = await import(${JSON.stringify(pathToFileURL(path.join(here, 'parquet.ts')).href)});
    const { validateRow } = await import(${JSON.stringify(pathToFileURL(path.join(here, 'validate.ts')).href)});
    const file = ${JSON.stringify(path.join(here, 'fixtures', 'text_timestamps.parquet'))};
    const verdicts = [];
    for await (const g of readRowGroups(await openParquet(file), file)) {
      for (let i = 0; i < g.rows; i++) {
        const c = g.columns;
        const v = validateRow({ id: c.id[i], timestamp: c.timestamp[i], stock_price: c.stock_price[i], sales_trend: c.sales_trend[i] });
        verdicts.push(v.ok ? v.record.timestamp : v.reason);
      }
    }
    console.log(JSON.stringify({ offset: new Date(2024, 0, 1).getTimezoneOffset(), verdicts }));
  `;
  const run = (tz: string) => {
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', probe], {
      cwd: path.join(here, '..'),
      env: { ...process.env, TZ: tz },
      encoding: 'utf8',
      timeout: 60_000,
    });
    if (child.status !== 0) throw new Error(`the probe under TZ=${tz} failed: ${child.stderr || child.error}`);
    return JSON.parse(child.stdout) as { offset: number; verdicts: (number | string)[] };
  };
  const expected = [
    utc(2016, 3, 13, 6),
    // 02:30 of the day New York springs forward: a local time that never was there.
    utc(2016, 3, 13, 2, 30),
    utc(2024, 1, 1),
    utc(2024, 2, 29, 23, 59, 59, 999),
    utc(2024, 6, 1, 6, 30),
    utc(2024, 6, 1, 12),
    utc(2025, 1, 1),
    'timestamp "1" is not a valid time: it is not ISO-8601 (such as 2024-01-31T13:45:00Z)',
    'timestamp "12" is not a valid time: it is not ISO-8601 (such as 2024-01-31T13:45:00Z)',
    'timestamp "2023-02-29T00:00:00" is not a valid time: 2023-02 has no day 29',
  ];

  it.each([
    ['UTC', 0],
    ['America/New_York', 300],
    ['Asia/Kolkata', -330],
  ])('TZ=%s gives the same rows', { timeout: 60_000 }, (tz, offset) => {
    const { offset: seen, verdicts } = run(tz);
    // The zone did take hold in the child: else the test would prove nothing.
    expect(seen).toBe(offset);
    expect(verdicts).toEqual(expected);
  });
});
