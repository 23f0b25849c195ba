// ISO-8601 text to epoch milliseconds, the same on every host. Date.parse
// reads text without an offset as the host's local time (the same file gave
// two answers under two TZ settings) and takes anything V8 can guess at ("1"
// as 2001-01-01), so it is not used here: the instant is computed from the
// fields, with no Date and no time zone database in the way.
//
// What is accepted, and why:
// - The extended format of RFC 3339 / ISO 8601: 2024-01-31T13:45:00.123+05:30.
//   `t` and `z` in lower case, and a space for the T, as RFC 3339 allows:
//   CSV exports (pandas, PostgreSQL, spreadsheets) write a space.
// - Seconds and their fraction are optional (13:45 is 13:45:00); digits past
//   the millisecond are cut, as the reader cuts Parquet's micro- and
//   nanoseconds (never rounded: rounding could carry into the next day).
// - No offset means UTC, as a Parquet timestamp without a zone is.
// - The offset is Z, ±hh:mm or ±hh (PostgreSQL writes +00).
// - A date alone (2024-01-31) is its midnight UTC: pandas writes a column of
//   midnights to CSV as bare dates, and ECMAScript reads them so too.
// - 24:00 (all zeros after it) is the next day's midnight, as ISO 8601:2004
//   allows; any other hour 24 is refused.
// - Years of four digits, or six with a sign (as toISOString writes them
//   beyond 0000..9999), so every instant PostgreSQL stores can be written.
// Refused, with why: anything else, including a leap second (:60, which a
// JavaScript time cannot hold), an offset past ±23:59, year -000000, and days
// a month lacks (2023-02-29).

const ISO = /^([+-]\d{6}|\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(?:([Zz])|([+-])(\d{2})(?::(\d{2}))?)?)?$/;

/** The shape accepted, as a reason shows it. */
export const ISO_EXAMPLE = '2024-01-31T13:45:00Z';

const MS_PER_DAY = 86_400_000;

const isLeap = (y: number) => y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);

function daysInMonth(y: number, m: number): number {
  if (m === 2) return isLeap(y) ? 29 : 28;
  return m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
}

/**
 * Days from 1970-01-01 to a date of the proleptic Gregorian calendar, for any
 * year (H. Hinnant's days_from_civil). Date.UTC would do, but maps the years
 * 0 to 99 onto 1900 to 1999.
 */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

/**
 * ISO-8601 text as epoch milliseconds; or, when it is not one, why (a short
 * phrase, without the text). Pure, and independent of the host's time zone.
 */
export function parseIsoTime(text: string): number | string {
  const m = ISO.exec(text.trim());
  if (!m) return `it is not ISO-8601 (such as ${ISO_EXAMPLE})`;
  const [, yearText, monthText, dayText, hourText, minuteText, secondText, fraction, zulu, sign, offsetHours, offsetMinutes] = m;
  if (yearText === '-000000') return 'year -000000 does not exist (0000 is 1 BC)';
  const year = Number(yearText);
  const month = Number(monthText);
  const day = Number(dayText);
  if (month < 1 || month > 12) return `month ${monthText} does not exist`;
  if (day < 1 || day > daysInMonth(year, month)) return `${yearText}-${monthText} has no day ${dayText}`;
  const hour = Number(hourText ?? 0);
  const minute = Number(minuteText ?? 0);
  const second = Number(secondText ?? 0);
  if (hour === 24) {
    if (minute !== 0 || second !== 0 || /[1-9]/.test(fraction ?? '')) return 'hour 24 is only 24:00:00, the end of the day';
  } else if (hour > 23) return `hour ${hourText} does not exist`;
  if (minute > 59) return `minute ${minuteText} does not exist`;
  if (second === 60) return 'second 60 (a leap second) is not supported';
  if (second > 59) return `second ${secondText} does not exist`;
  let offset = 0;
  if (sign && !zulu) {
    const oh = Number(offsetHours);
    const om = Number(offsetMinutes ?? 0);
    if (oh > 23 || om > 59) return `offset ${sign}${offsetHours}${offsetMinutes === undefined ? '' : `:${offsetMinutes}`} is out of range`;
    offset = (sign === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const millis = fraction ? Number(fraction.slice(0, 3).padEnd(3, '0')) : 0;
  return daysFromCivil(year, month, day) * MS_PER_DAY + hour * 3_600_000 + (minute - offset) * 60_000 + second * 1000 + millis;
}
