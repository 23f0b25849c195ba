import { describe, expect, it } from 'vitest';
import { guardFor, hostAllowed, originAllowed, parseAuthority, refusal } from './http-guard.mjs';

const guard = guardFor('127.0.0.1', 8090);

describe('guardFor', () => {
  it('allows the loopback names, and the configured host unless it is a wildcard', () => {
    expect(guard).toEqual({ hosts: ['127.0.0.1', 'localhost', '[::1]'], port: 8090 });
    expect(guardFor('0.0.0.0', 8090).hosts).toEqual(['127.0.0.1', 'localhost', '[::1]']);
    expect(guardFor('::', 8090).hosts).toEqual(['127.0.0.1', 'localhost', '[::1]']);
    expect(guardFor('Dash.Example.Internal', 9000)).toEqual({
      hosts: ['127.0.0.1', 'localhost', '[::1]', 'dash.example.internal'],
      port: 9000,
    });
    expect(guardFor('::1', 8090).hosts).toEqual(['127.0.0.1', 'localhost', '[::1]']);
    expect(guardFor('fd00::5', 8090).hosts).toContain('[fd00::5]');
  });
});

describe('parseAuthority', () => {
  it('reads a host and an optional port, and nothing with userinfo, a path or spaces', () => {
    expect(parseAuthority('LOCALHOST:8090')).toEqual({ host: 'localhost', port: 8090 });
    expect(parseAuthority('[::1]:8090')).toEqual({ host: '[::1]', port: 8090 });
    expect(parseAuthority('127.0.0.1')).toEqual({ host: '127.0.0.1', port: null });
    for (const bad of [
      '',
      ':8090',
      'localhost:',
      'localhost:8090@evil',
      'evil@localhost:8090',
      'localhost/x',
      'local host',
      '::1',
      'localhost:123456',
    ])
      expect(parseAuthority(bad), bad).toBeNull();
  });
});

describe('hostAllowed', () => {
  it('takes our names with our port or none, in any case', () => {
    for (const ok of ['127.0.0.1:8090', 'localhost:8090', '[::1]:8090', 'LocalHost:8090', '[::1]', 'localhost', '127.0.0.1'])
      expect(hostAllowed(ok, guard), ok).toBe(true);
  });
  it('refuses other names, other ports, look-alikes and a missing header', () => {
    for (const bad of [
      'rebind.attacker.test',
      'rebind.attacker.test:8090',
      '127.0.0.1.attacker.test',
      '127.0.0.1.attacker.test:8090',
      'localhost.attacker.test:8090',
      'attacker.test#localhost:8090',
      'localhost:8090@evil',
      'localhost:8091',
      '127.0.0.1:80',
      '[::2]:8090',
      '[::ffff:127.0.0.1]:8090',
      '0.0.0.0:8090',
      'localhost.:8090',
      ' localhost:8090',
      '',
    ])
      expect(hostAllowed(bad, guard), bad).toBe(false);
    expect(hostAllowed(undefined, guard)).toBe(false);
    expect(hostAllowed(['localhost:8090', 'evil:8090'], guard)).toBe(false);
  });
  it('takes the configured host name too', () => {
    const named = guardFor('dash.example.internal', 8090);
    expect(hostAllowed('DASH.example.internal:8090', named)).toBe(true);
    expect(hostAllowed('dash.example.internal.attacker.test:8090', named)).toBe(false);
  });
});

describe('originAllowed', () => {
  it('takes no Origin, and our own pages on our port', () => {
    expect(originAllowed(undefined, guard)).toBe(true);
    for (const ok of ['http://127.0.0.1:8090', 'http://localhost:8090', 'http://[::1]:8090', 'HTTP://LOCALHOST:8090'])
      expect(originAllowed(ok, guard), ok).toBe(true);
  });
  it('refuses other sites, other ports, other schemes, null and look-alikes', () => {
    for (const bad of [
      'http://rebind.attacker.test:8090',
      'http://127.0.0.1.attacker.test:8090',
      'http://localhost:8091',
      'http://localhost',
      'https://localhost:8090',
      'http://localhost:8090@evil',
      'http://evil@localhost:8090',
      'http://localhost:8090/',
      'localhost:8090',
      'null',
      '',
    ])
      expect(originAllowed(bad, guard), bad).toBe(false);
    expect(originAllowed(['http://localhost:8090'], guard)).toBe(false);
  });
  it('takes an Origin without a port when we listen on 80', () => {
    expect(originAllowed('http://localhost', guardFor('127.0.0.1', 80))).toBe(true);
  });
});

describe('refusal', () => {
  it('is 421 for a foreign Host, 403 for a foreign Origin where asked, else null', () => {
    expect(refusal({ host: 'rebind.attacker.test' }, guard)).toEqual({
      status: 421,
      error: expect.stringMatching(
        /^this server answers only to 127\.0\.0\.1:8090, localhost:8090, \[::1\]:8090 \(Host was "rebind\.attacker\.test"\)/,
      ),
    });
    expect(refusal({}, guard)?.error).toMatch(/Host was missing/);
    const foreign = { host: 'localhost:8090', origin: 'http://rebind.attacker.test' };
    expect(refusal(foreign, guard)).toBeNull();
    expect(refusal(foreign, guard, { checkOrigin: true })).toEqual({
      status: 403,
      error: expect.stringMatching(/^requests from pages of "http:\/\/rebind/),
    });
    expect(refusal({ host: 'localhost:8090', origin: 'http://localhost:8090' }, guard, { checkOrigin: true })).toBeNull();
    // A foreign Host is refused before its Origin is looked at.
    expect(refusal({ host: 'evil', origin: 'http://evil' }, guard, { checkOrigin: true })?.status).toBe(421);
  });
  it('keeps the quoted header short, on one line', () => {
    const { error } = refusal({ host: `x${'y'.repeat(500)}\nset-cookie: a` }, guard) ?? { error: '' };
    expect(error.length).toBeLessThan(250);
    expect(error).not.toContain('\n');
  });
});
