// npm run dlq:replay [-- --rejected] [--drop]: sends what waits in the dead
// letter queue (or the producer's rejected topic) back to the pipeline's topic,
// each record with its original Kafka timestamp (see replay.ts).
import { parseFlags } from '#lib/cli.mjs';
import { config } from '#lib/config.mjs';
import { registryAuth } from '#lib/credentials.mjs';
import { kafkaClient } from '#lib/kafka.mjs';
import { main } from '#lib/errors.mjs';
import { replay } from './replay.js';

const USAGE = 'usage: npm run dlq:replay -- [--rejected] [--drop]';

await main(async () => {
  const { values } = parseFlags(
    {
      options: {
        rejected: { type: 'boolean', default: false },
        drop: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
    },
    USAGE,
  );
  if (values.help) {
    console.log(
      `${USAGE}\n  --rejected  the producer's rejected rows, validated again, instead of the dead letter queue\n  --drop      mark what is pending as handled without sending it`,
    );
    return;
  }
  const { pipeline } = config;
  const source = values.rejected
    ? { kind: 'rejected' as const, topic: pipeline.rejectedTopic, group: pipeline.replayGroups.rejected }
    : { kind: 'dlq' as const, topic: pipeline.dlqTopic, group: pipeline.replayGroups.dlq };
  const r = await replay({
    kafka: kafkaClient(config),
    registryUrl: config.registry.ccompatUrl,
    registryAuth: registryAuth(config),
    topic: pipeline.topic,
    subject: pipeline.subject,
    source,
    drop: values.drop,
    runDir: config.runDir,
    note: (line) => console.error(line),
  });
  for (const line of r.warnings) console.error(`warning: ${line}`);
  if (r.pending === 0) {
    console.log(`${source.topic}: nothing to replay`);
    return;
  }
  const why = r.reasons.map(([reason, n]) => `${n} x ${reason}`).join('; ');
  if (values.drop) console.log(`${source.topic}: ${r.dropped} records marked handled without sending (dropped)`);
  else
    console.log(
      `${source.topic}: ${r.sent} of ${r.pending} sent back to ${pipeline.topic}${r.stillInvalid ? `, ${r.stillInvalid} still invalid (kept out)` : ''}${why ? ` (${why})` : ''}`,
    );
});
