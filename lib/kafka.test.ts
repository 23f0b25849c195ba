import { describe, expect, it } from 'vitest';
import { ensureTopic } from './kafka.mjs';

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
