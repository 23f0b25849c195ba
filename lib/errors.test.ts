import { describe, expect, it } from 'vitest';
import { ConfigError } from './config.mjs';
import { UsageError, UserError, explain } from './errors.mjs';

describe('explain', () => {
  it('prints a user error as it is, with its exit code', () => {
    expect(explain(new UserError('Kafka is down: run `npm run platform:up`'))).toEqual({
      message: 'Kafka is down: run `npm run platform:up`',
      exitCode: 1,
    });
    expect(explain(new UsageError('--rate x is not a number'))?.exitCode).toBe(2);
    expect(explain(new ConfigError('PG_PORT=abc is not a TCP port'))?.exitCode).toBe(1);
  });
  it('names the fix for errors of the libraries we know', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5433'), { code: 'ECONNREFUSED' });
    expect(explain(refused)?.message).toMatch(/not reachable .*npm run platform:up/);
    const password = Object.assign(new Error('password authentication failed'), { code: '28P01' });
    expect(explain(password)?.message).toMatch(/PG_\*_PASSWORD .*npm run db:migrate/);
    const sql = Object.assign(new Error('relation "x" does not exist'), { code: '42P01' });
    expect(explain(sql)?.message).toBe('PostgreSQL: relation "x" does not exist');
  });
  it('leaves errors it cannot name to the caller, stack and all', () => {
    expect(explain(new TypeError('x is undefined'))).toBeNull();
    expect(explain(Object.assign(new Error('odd'), { code: 'not-a-sqlstate' }))).toBeNull();
  });
});
