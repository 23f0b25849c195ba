import { describe, expect, it } from 'vitest';
import { ensureTopic, kafkaAccessProblem } from './kafka.mjs';

const unknown = () => Object.assign(new Error('This server does not host this topic-partition'), { type: 'UNKNOWN_TOPIC_OR_PARTITION' });

describe('ensureTopic', () => {
  it('waits while a topic just created is unknown to the broker or has no leader yet', async () => {
    const answers: (() => unknown)[] = [
      () => {
        throw unknown();
      },
      () => ({ topics: [{ partitions: [{ leader: -1 }, { leader: 1 }] }] }),
      () => ({ topics: [{ partitions: [{ leader: 1 }, { leader: 1 }] }] }),
    ];
    const admin = {
      createTopics: async () => {
        throw unknown();
      },
      fetchTopicMetadata: async () => answers.shift()!(),
    };
    expect(await ensureTopic(admin as never, 't', 2)).toBe(2);
    expect(answers).toHaveLength(0);
  });

  it('passes on any other error at once, and gives up on a topic that never gets a leader', async () => {
    const denied = Object.assign(new Error('Topic authorization failed'), { type: 'TOPIC_AUTHORIZATION_FAILED' });
    const refusing = { createTopics: async () => Promise.reject(denied), fetchTopicMetadata: async () => ({}) };
    await expect(ensureTopic(refusing as never, 't', 1)).rejects.toThrow('Topic authorization failed');
    const leaderless = { createTopics: async () => true, fetchTopicMetadata: async () => ({ topics: [{ partitions: [{ leader: -1 }] }] }) };
    await expect(ensureTopic(leaderless as never, 't', 1, { timeoutMs: 300 })).rejects.toThrow(
      /topic t has no leader 0.3 s after it was created/,
    );
  });
});

describe('kafkaAccessProblem', () => {
  const wrapped = (inner: Error) =>
    Object.assign(new Error('Connection error'), { name: 'KafkaJSNumberOfRetriesExceeded', originalError: inner });
  it('names the keys for refused credentials, whoever the client is', () => {
    const sasl = Object.assign(new Error('SASL SCRAM SHA512 authentication failed: invalid credentials'), {
      name: 'KafkaJSSASLAuthenticationError',
    });
    expect(kafkaAccessProblem(sasl)).toMatch(
      /^Kafka refused the admin's credentials \(SASL SCRAM .*\): check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD/,
    );
    expect(kafkaAccessProblem(wrapped(sasl), 'producer')).toMatch(/check KAFKA_PRODUCER_SASL_USERNAME\/_PASSWORD \(or KAFKA_SASL_USERNAME/);
  });
  it('names KAFKA_SSL_CA_FILE for a certificate not trusted, by code or by message', () => {
    const tls = Object.assign(new Error('Connection error: self-signed certificate in certificate chain'), {
      name: 'KafkaJSConnectionError',
    });
    expect(kafkaAccessProblem(wrapped(tls))).toMatch(/^Kafka's TLS certificate is not trusted .*: set KAFKA_SSL_CA_FILE/);
    const coded = Object.assign(new Error('x'), { cause: Object.assign(new Error('y'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }) });
    expect(kafkaAccessProblem(coded)).toMatch(/KAFKA_SSL_CA_FILE/);
  });
  it('names ACLs for an authorization failure, and nothing for a broker down', () => {
    const denied = Object.assign(new Error('Not authorized to access topics: [Topic authorization failed]'), {
      name: 'KafkaJSProtocolError',
      type: 'TOPIC_AUTHORIZATION_FAILED',
    });
    expect(kafkaAccessProblem(denied, 'producer')).toMatch(
      /^Kafka denied the producer \(TOPIC_AUTHORIZATION_FAILED: .*\): grant its user ACLs/,
    );
    expect(
      kafkaAccessProblem(wrapped(Object.assign(new Error('Connection error: connect ECONNREFUSED'), { name: 'KafkaJSConnectionError' }))),
    ).toBeNull();
  });
});

describe('kafkaAccessProblem in an aggregate', () => {
  it('finds the authorization failure inside kafkajs "Topic creation errors"', () => {
    const inner = Object.assign(new Error('Topic authorization failed'), { type: 'TOPIC_AUTHORIZATION_FAILED' });
    const aggregate = Object.assign(new Error('Topic creation errors'), { name: 'KafkaJSAggregateError', errors: [inner] });
    expect(kafkaAccessProblem(aggregate, 'producer')).toMatch(/^Kafka denied the producer \(TOPIC_AUTHORIZATION_FAILED/);
  });
});

describe('kafkaAccessProblem for a protocol mismatch', () => {
  it('says the listener does not speak TLS when a TLS client meets a plaintext port', () => {
    const reset = Object.assign(new Error('Client network socket disconnected before secure TLS connection was established'), {
      code: 'ECONNRESET',
    });
    expect(kafkaAccessProblem(reset)).toMatch(/^Kafka's listener does not speak TLS .*: set KAFKA_SECURITY_PROTOCOL/);
    expect(kafkaAccessProblem(Object.assign(new Error('write EPROTO'), { code: 'EPROTO' }))).toMatch(/does not speak TLS/);
  });
});
