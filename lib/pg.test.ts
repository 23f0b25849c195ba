import crypto from 'node:crypto';
// @ts-expect-error pg's SCRAM client has no types: its own three functions are all this uses.
import saslClient from 'pg/lib/crypto/sasl.js';
import { describe, expect, it } from 'vitest';
import { pgpassField } from './credentials.mjs';
import { scramVerifier } from './pg.mjs';

/**
 * The server's half of a SCRAM-SHA-256 login, from a stored verifier only (as
 * PostgreSQL's auth-scram.c does it), against pg's own client: the verifier
 * is right when pg's proof checks out and pg accepts the server's signature.
 */
async function login(verifier: string, password: string) {
  const [, iterations, salt, storedKey, serverKey] = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$/.exec(verifier)!;
  const session = sasl.startSession(['SCRAM-SHA-256']);
  const nonce = `${session.clientNonce}${crypto.randomBytes(18).toString('base64')}`;
  const serverFirst = `r=${nonce},s=${salt},i=${iterations}`;
  await sasl.continueSession(session, password, serverFirst);
  const { c, p } = Object.fromEntries(session.response.split(',').map((kv: string) => [kv[0], kv.slice(2)]));
  const authMessage = `n=*,r=${session.clientNonce},${serverFirst},c=${c},r=${nonce}`;
  const hmac = (key: Buffer, text: string) => crypto.createHmac('sha256', key).update(text).digest();
  const signature = hmac(Buffer.from(storedKey, 'base64'), authMessage);
  const clientKey = Buffer.from(p, 'base64').map((b, i) => b ^ signature[i]);
  if (crypto.createHash('sha256').update(clientKey).digest('base64') !== storedKey) return false;
  sasl.finalizeSession(session, `v=${hmac(Buffer.from(serverKey, 'base64'), authMessage).toString('base64')}`);
  return true;
}

const sasl = saslClient as {
  startSession(mechanisms: string[]): { clientNonce: string; response: string };
  continueSession(session: object, password: string, serverData: string): Promise<void>;
  finalizeSession(session: object, serverData: string): void;
};

describe('scramVerifier', () => {
  it("is what PostgreSQL stores: pg's client logs in with the password against it, not with another", async () => {
    for (const password of ['pencil', 'x3J-_generated_base64url', 'pässwörd with spaces', 'ｆｕｌｌ\u00A0width']) {
      const verifier = scramVerifier(password);
      expect(verifier).toMatch(/^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}:[A-Za-z0-9+/=]{44}$/);
      expect(verifier).not.toContain(password);
      expect(await login(verifier, password)).toBe(true);
      expect(await login(verifier, `${password}x`)).toBe(false);
    }
  });

  it('salts every verifier: the same password never gives the same text twice', () => {
    expect(scramVerifier('same')).not.toBe(scramVerifier('same'));
    const salt = Buffer.alloc(16, 7);
    expect(scramVerifier('same', { salt })).toBe(scramVerifier('same', { salt }));
  });
});

describe('pgpassField', () => {
  it("escapes the separator and the escape, as libpq's .pgpass reader expects", () => {
    expect(pgpassField('a:b\\c')).toBe('a\\:b\\\\c');
    expect(pgpassField(5433)).toBe('5433');
  });
});
