// npm run produce -- [--file path] [--rate N | --speed F] [--limit N] [--from-id N] [--restart]
//   [--topic name] [--partitions N] [--schema file.avsc]
// --from-id N selects the rows whose id is N or more: it sends the valid ones
// and rejects the invalid ones among them; the others (a smaller id, or none
// that reads as one) are skipped, neither sent nor rejected. The selection
// has a checkpoint of its own, so a run without --from-id still sends (or
// rejects) every row, and a rerun of the same --from-id resumes its own.
// One producer per file, topic and selection at a time (a lock next to the
// checkpoint); kafkajs's own log goes to <STATE_DIR>/logs/producer.log.
import path from 'node:path';
import { parseFlags } from '#lib/cli.mjs';
import { config } from '#lib/config.mjs';
import { registryAuth } from '#lib/credentials.mjs';
import { kafkaClient, topicReplication } from '#lib/kafka.mjs';
import { UsageError, main } from '#lib/errors.mjs';
import type { Pace } from './pacing.js';
import { produce, summaryLine } from './produce.js';

const USAGE =
  'usage: npm run produce -- [--file <parquet>] [--rate <rows/s> | --speed <factor>] [--limit <rows>] [--from-id <id>] [--restart] [--topic <name>] [--partitions <n>] [--schema <file.avsc>]';

function positive(name: string, raw: string | undefined, integer = true): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${name} ${raw} is not a positive ${integer ? 'integer' : 'number'}`);
  }
  return n;
}

await main(async () => {
  const { values } = parseFlags(
    {
      options: {
        file: { type: 'string', default: config.datasetFile },
        rate: { type: 'string' },
        speed: { type: 'string' },
        limit: { type: 'string' },
        'from-id': { type: 'string' },
        restart: { type: 'boolean', default: false },
        topic: { type: 'string', default: config.pipeline.topic },
        partitions: { type: 'string', default: String(config.pipeline.partitions) },
        schema: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    },
    USAGE,
  );
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const rate = positive('rate', values.rate, false);
  const speed = positive('speed', values.speed, false);
  if (rate !== undefined && speed !== undefined) throw new UsageError('--rate and --speed exclude each other: pick one');
  const pace: Pace =
    rate !== undefined ? { mode: 'rate', rowsPerSecond: rate } : speed !== undefined ? { mode: 'speed', factor: speed } : { mode: 'max' };

  // First Ctrl-C: let what is in flight land (a few seconds at most: a frozen
  // broker answers nothing), checkpoint what Kafka acknowledged, disconnect
  // (as long at most). Second: leave now (the checkpoint on disk still only
  // names acknowledged rows).
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) process.exit(130);
    console.error(`\n${signal}: flushing what is in flight and writing the checkpoint (again to quit at once)`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const topic = values.topic;
  const summary = await produce({
    file: values.file,
    kafka: kafkaClient(config, 'producer'),
    registryUrl: config.registry.ccompatUrl,
    registryAuth: registryAuth(config),
    replication: topicReplication(config),
    topic,
    rejectedTopic: topic === config.pipeline.topic ? config.pipeline.rejectedTopic : `${topic}.rejected`,
    subject: `${topic}-value`,
    partitions: positive('partitions', values.partitions)!,
    runDir: config.runDir,
    pace,
    limit: positive('limit', values.limit),
    fromId: positive('from-id', values['from-id']),
    restart: values.restart,
    compression: config.producer.compression,
    chunkRows: config.producer.chunkRows,
    batchMessages: config.producer.batchMessages,
    schemaFile: values.schema,
    // kafkajs's own lines are for a look into a failure, not for the terminal.
    kafkaLogFile: path.join(config.logDir, 'producer.log'),
    signal: controller.signal,
  });
  console.log(summaryLine(summary));
  if (summary.stopped) process.exitCode = 130;
});
// Done, or failed and said so: leave now. After a failed run kafkajs may
// still retry the requests that were in flight (a broker that froze), which
// kept the process alive for minutes after its error line. Writes to a
// terminal, a pipe or a file are synchronous here: nothing printed is lost.
process.exit();
