import { describe, expect, it } from 'vitest';
import { loadConfig } from '#lib/config.mjs';
import { registryDown, transientCause } from './heal.mjs';

describe('a dead letter of a passing fault', () => {
  it('is the registry unreachable or failing, a refused or lost connection, a timeout', () => {
    // As Connect's headers said in the two outages.
    expect(
      transientCause({ stage: 'VALUE_CONVERTER', cls: 'io.apicurio.registry.rest.client.exception.RestClientException', message: '' }),
    ).toBe(true);
    expect(
      transientCause({
        stage: 'VALUE_CONVERTER',
        cls: 'RestClientException',
        message: 'org.postgresql.util.PSQLException: An I/O error occurred while sending to the backend.',
      }),
    ).toBe(true);
    expect(transientCause({ stage: 'VALUE_CONVERTER', cls: 'java.net.ConnectException', message: 'Connection refused' })).toBe(true);
    expect(transientCause({ cls: 'RestClientException', message: 'HTTP 503 Service Unavailable' })).toBe(true);
    expect(transientCause({ cls: 'java.net.SocketTimeoutException', message: 'Read timed out' })).toBe(true);
  });

  it('is never a record refused for its content', () => {
    expect(
      transientCause({ stage: 'VALUE_CONVERTER', cls: 'org.apache.kafka.connect.errors.DataException', message: 'Unknown magic byte!' }),
    ).toBe(false);
    expect(transientCause({ cls: 'RestClientException', message: "No content with id 'contentId-987654' was found" })).toBe(false);
    expect(transientCause({ cls: 'RestClientException', message: 'HTTP 404' })).toBe(false);
    expect(
      transientCause({
        stage: 'TASK_PUT',
        cls: 'org.postgresql.util.PSQLException',
        message: 'ERROR: new row for relation "synthetic_data" violates check constraint "synthetic_data_timestamp_finite"',
      }),
    ).toBe(false);
    expect(transientCause({})).toBe(false);
  });
});

describe('the registry probe', () => {
  const config = loadConfig(undefined, { ...process.env, PLATFORM: 'local' });
  const answer = (status: number) => (async () => new Response('[]', { status })) as unknown as typeof fetch;
  it('calls a server error or no answer down, and any other answer up (a wrong setting is not a passing fault)', async () => {
    expect(await registryDown(config, answer(200))).toBeNull();
    expect(await registryDown(config, answer(401))).toBeNull();
    expect(await registryDown(config, answer(503))).toBe('HTTP 503');
    const refused = (async () => {
      throw Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
    }) as unknown as typeof fetch;
    expect(await registryDown(config, refused)).toBe('ECONNREFUSED');
  });
});
