import { describe, expect, it } from 'vitest';
import net from 'node:net';
import { classifyPid, portTaken } from './procs.mjs';

const marker = '-Dkpp.service=kafka@/repo/.local';

describe('classifyPid', () => {
  const alive = (pid: number) => pid === 10 || pid === 20;
  const argv = (pid: number) => (pid === 10 ? ['java', marker, 'kafka.Kafka'] : ['vim']);

  it('has nothing to say without a pid file', () => {
    expect(classifyPid(undefined, alive, argv, marker)).toEqual({ state: 'none' });
  });
  it('accepts a live process that carries our marker', () => {
    expect(classifyPid('10\n', alive, argv, marker)).toEqual({ state: 'running', pid: 10 });
  });
  it('calls a pid file stale when its process is gone', () => {
    expect(classifyPid('30', alive, argv, marker)).toMatchObject({ state: 'stale', pid: 30, why: 'process 30 is gone' });
  });
  it('calls a pid file stale when its pid was reused by another program', () => {
    expect(classifyPid('20', alive, argv, marker)).toMatchObject({ state: 'stale', why: 'pid 20 now belongs to another program' });
  });
  it('reads the first line only (postmaster.pid has many)', () => {
    expect(classifyPid('10\n/data\n1700000000\n', alive, argv, marker)).toEqual({ state: 'running', pid: 10 });
  });
  it('calls garbage stale', () => {
    expect(classifyPid('not a pid', alive, argv, marker)).toMatchObject({ state: 'stale', pid: null });
  });
});

describe('portTaken', () => {
  it('sees a port held by a listener and a free one after it closes', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    expect(await portTaken('127.0.0.1', port)).toBe(true);
    await new Promise((resolve) => server.close(resolve));
    expect(await portTaken('127.0.0.1', port)).toBe(false);
  });
});
