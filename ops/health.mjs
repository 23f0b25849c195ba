// @ts-check
// What `npm run status` concludes from the facts: every problem as one line
// naming the cause and the fix. Pure, so each rule has a test.
import { age } from './quarantine.mjs';
import { keepsRestarting } from './watchdog.mjs';

/**
 * @typedef {{ pending: number, oldestAt: Date | null, reasons: [string, number][] }} Quarantine
 * @typedef {object} Facts
 * @property {{ name: string, state: string }[]} services
 * @property {{ name: string, state: 'running' | 'failed' | 'pending' | 'missing', detail: string }[]} connectors
 * @property {{ lag: number | null, moved: boolean } | null} sink lag now, and whether the group's offsets moved while sampled
 * @property {Quarantine | null} dlq
 * @property {Quarantine | null} [rejected] the producer's rejected rows not yet replayed or dropped
 * @property {Record<string, import('./watchdog.mjs').ConnectorRecord>} restarts the watchdog's record
 * @property {string | null} [tables] why the tables could not be read
 * @property {boolean} [external] the services are PLATFORM=external endpoints, not ours
 */

/** @param {Facts} f @param {number} now @returns {string[]} */
export function problems(f, now = Date.now()) {
  const out = [];
  // An external service's state names its own fix; ours come up with `npm start`.
  for (const s of f.services)
    if (s.state !== 'ready')
      out.push(f.external ? `${s.name} is ${s.state}` : `${s.name} is ${s.state}: \`npm start\` brings everything up`);
  for (const c of f.connectors) {
    if (c.state === 'missing') out.push(`connector ${c.name} is not created: run \`npm run connectors:apply\``);
    else if (keepsRestarting(f.restarts[c.name], now)) {
      const r = f.restarts[c.name];
      out.push(
        `connector ${c.name} keeps failing (${r.restarts.length} restarts, failing since ${r.failingSince}): ${r.lastError}; see .local/logs/connect.log`,
      );
    } else if (c.state !== 'running') out.push(`connector ${c.name} is not running (${c.detail})`);
  }
  if (f.sink && f.sink.lag !== null && f.sink.lag > 0 && !f.sink.moved) {
    out.push(`the sink is stuck: ${f.sink.lag} records behind and not moving; see the connectors above and .local/logs/connect.log`);
  }
  if (f.dlq && f.dlq.pending > 0) {
    const oldest = f.dlq.oldestAt ? `, oldest ${age(now - f.dlq.oldestAt.getTime())} old` : '';
    const why = f.dlq.reasons.map(([r, n]) => `${n} x ${r}`).join('; ');
    out.push(
      `${f.dlq.pending} ${f.dlq.pending === 1 ? 'record' : 'records'} in the dead letter queue not replayed${oldest} (${why}): fix the cause, then \`npm run dlq:replay\``,
    );
  }
  if (f.rejected && f.rejected.pending > 0) {
    const n = f.rejected.pending;
    const oldest = f.rejected.oldestAt ? `, oldest ${age(now - f.rejected.oldestAt.getTime())} old` : '';
    const why = f.rejected.reasons.map(([r, k]) => `${k} x ${r}`).join('; ');
    out.push(
      `${n} ${n === 1 ? 'row' : 'rows'} the producer rejected not replayed${oldest} (${why}): correct them at the source and produce again, or \`npm run dlq:replay -- --rejected\` once they are valid, or \`-- --rejected --drop\` to let them go`,
    );
  }
  if (f.tables) out.push(`${f.tables}: run \`npm run db:migrate\``);
  return out;
}
