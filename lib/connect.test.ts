import { describe, expect, it } from 'vitest';
import { assessStatus, failedParts } from './connect.mjs';

const status = (connector: string, ...tasks: string[]) => ({
  connector: { state: connector },
  tasks: tasks.map((state, id) => ({ id, state, ...(state === 'FAILED' ? { trace: `boom ${id}` } : {}) })),
});

describe('connector status', () => {
  it('is running only when the connector and every task run', () => {
    expect(assessStatus(status('RUNNING', 'RUNNING', 'RUNNING')).state).toBe('running');
    expect(assessStatus(status('RUNNING')).state).toBe('pending');
    expect(assessStatus(status('RUNNING', 'RUNNING', 'UNASSIGNED')).state).toBe('pending');
  });
  it("is failed when any part failed, with that part's trace", () => {
    const verdict = assessStatus(status('RUNNING', 'RUNNING', 'FAILED'));
    expect(verdict).toMatchObject({ state: 'failed', trace: 'boom 1' });
    expect(verdict.detail).toBe('connector RUNNING, tasks 0:RUNNING 1:FAILED');
  });
  it('lists the failed parts, connector first', () => {
    expect(
      failedParts({ connector: { state: 'FAILED', trace: 'c' }, tasks: [{ id: 0, state: 'FAILED' }] }).map((p) => p.trace ?? p.id),
    ).toEqual(['c', 0]);
    expect(failedParts(undefined)).toEqual([]);
  });
});
