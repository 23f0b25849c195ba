// @ts-check
// What a failed sink task's trace says: PostgreSQL's refusal, the root cause,
// and the row of the failing single-row INSERT (with the Kafka partition and
// offset the sink sets). Pure: the watchdog and ops/refused.mjs act on it.

/**
 * The refusal PostgreSQL itself reported in a task's trace ("ERROR: ..."),
 * or null for anything else (a lost connection, a converter). Pure.
 * @param {string} trace
 */
export function refusal(trace) {
  const m = /PSQLException: (ERROR: [^\n]*)/.exec(trace);
  return m ? m[1].trim().slice(0, 300) : null;
}

/**
 * The root cause of a task's failure: its last "Caused by" line, without
 * package names. Pure.
 * @param {string} trace
 */
export function rootCause(trace) {
  const lines = String(trace ?? '').split('\n');
  const caused = lines.filter((l) => l.startsWith('Caused by: ')).at(-1);
  const line = (caused ?? lines[0] ?? '').replace(/^Caused by: /, '').trim();
  return (line.replace(/^(?:[a-z]\w*\.)+(?=[A-Z])/, '') || 'no trace').slice(0, 300);
}

/**
 * Reads one SQL literal list "(('1'::int8),(NULL),...)" from `text` at `at`.
 * @param {string} text @param {number} at @returns {{ values: (string | null)[], end: number } | null}
 */
function readTuple(text, at) {
  if (text[at] !== '(') return null;
  /** @type {(string | null)[]} */
  const values = [];
  let i = at + 1;
  for (;;) {
    if (text[i] !== '(') return null;
    i++;
    if (text.startsWith('NULL)', i)) {
      values.push(null);
      i += 5;
    } else if (text[i] === "'") {
      let value = '';
      for (i++; ; i++) {
        if (i >= text.length) return null;
        if (text[i] === "'" && text[i + 1] === "'") {
          value += "'";
          i++;
        } else if (text[i] === "'") break;
        else value += text[i];
      }
      const close = text.indexOf(')', i);
      if (close < 0) return null;
      values.push(value);
      i = close + 1;
    } else {
      const close = text.indexOf(')', i);
      if (close < 0) return null;
      values.push(text.slice(i, close));
      i = close + 1;
    }
    if (text[i] === ',') i++;
    else if (text[i] === ')') return { values, end: i + 1 };
    else return null;
  }
}

/**
 * The row of a failing single-row INSERT named in a task's trace, as column
 * -> literal text; null when the statement held several rows (the batch is
 * not isolated yet) or none is named. Pure.
 * @param {string} trace @returns {Record<string, string | null> | null}
 */
export function refusedRow(trace) {
  const m = /Batch entry \d+ INSERT INTO \S+ \(([^)]*)\) VALUES /.exec(trace);
  if (!m) return null;
  const columns = m[1].split(',').map((c) => c.trim().replace(/^"|"$/g, ''));
  const tuple = readTuple(trace, m.index + m[0].length);
  // A second row after the first: several records in one statement.
  if (!tuple || trace[tuple.end] === ',' || tuple.values.length !== columns.length) return null;
  return Object.fromEntries(columns.map((c, i) => [c, tuple.values[i]]));
}

/**
 * Where the refused record is in Kafka, from the failing row: its partition
 * and offset (set by the sink's InsertField transform) and its id; null
 * coordinates when the row does not carry them (a connector config from
 * before they were added). Pure.
 * @param {Record<string, string | null>} row
 * @returns {{ id: string | null, partition: number | null, offset: number | null }}
 */
export function recordKey(row) {
  const int = (/** @type {string | null | undefined} */ v) => (v !== null && v !== undefined && /^\d+$/.test(v) ? Number(v) : null);
  return { id: row.id ?? null, partition: int(row.kafka_partition), offset: int(row.kafka_offset) };
}

/**
 * Which records before the refused one have not landed: those whose id has
 * no row, or a row from an older version (an earlier offset of the same
 * partition, or none recorded), and that Connect did not dead-letter. Pure.
 * @param {{ offset: number, id: string | null }[]} before the records read, in order
 * @param {Map<string, { partition: number | null, offset: number | null }>} rows by id, as the table holds them
 * @param {number} partition @param {Set<number>} deadLettered offsets of this partition in the dead letter queue
 */
export function notLanded(before, rows, partition, deadLettered) {
  return before.filter((r) => {
    if (deadLettered.has(r.offset)) return false;
    if (r.id === null) return true;
    const row = rows.get(r.id);
    return !row || row.partition !== partition || row.offset === null || row.offset < r.offset;
  });
}

/**
 * Whether two refusals are the same one: the same text but for the numbers
 * in it (a batch's entry number, a row's values). Pure.
 * @param {string} a @param {string} b
 */
export const sameRefusal = (a, b) => a.replace(/\d+(\.\d+)?/g, '#') === b.replace(/\d+(\.\d+)?/g, '#');
