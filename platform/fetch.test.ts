import { describe, expect, it } from 'vitest';
import { damagedFile, mavenFailure } from './fetch.mjs';

describe('mavenFailure', () => {
  it('recognises a truncated archive', () => {
    const out =
      '[ERROR] Failed to execute goal ...:unpack (archives): Error while expanding /root/.m2/x.tar.gz: Unexpected end of ZLIB input stream';
    expect(mavenFailure(out).kind).toBe('corrupt');
  });
  it('recognises an unreachable registry', () => {
    expect(mavenFailure('[ERROR] Could not transfer artifact a:b:pom:1 from/to central: Unknown host repo').kind).toBe('network');
  });
  it('recognises a version that is not served', () => {
    expect(mavenFailure('[ERROR] Could not find artifact io.debezium:debezium-connector-jdbc:tar.gz:plugin:9.9 in central').kind).toBe(
      'missing',
    );
  });
});

describe('damagedFile', () => {
  const recorded = { 'kafka/libs/a.jar': 100, 'apicurio/quarkus-run.jar': 50 };
  it('passes an intact cache', () => {
    expect(damagedFile(recorded, (rel) => recorded[rel as keyof typeof recorded])).toBeNull();
  });
  it('names a truncated file', () => {
    expect(damagedFile(recorded, (rel) => (rel === 'kafka/libs/a.jar' ? 42 : 50))).toBe('kafka/libs/a.jar has 42 bytes, not 100');
  });
  it('names a missing file', () => {
    expect(damagedFile(recorded, (rel) => (rel === 'kafka/libs/a.jar' ? 100 : undefined))).toBe('apicurio/quarkus-run.jar is missing');
  });
});
