// npm run produce -- [--file path] [--rate N | --speed F] [--limit N] [--from-id N] [--restart]
//   [--topic name] [--partitions N] [--schema file.avsc]
import { parseFlags } from '#lib/cli.mjs';
import { config } from '#lib/config.mjs';
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

  // First Ctrl-C: finish what is in flight, checkpoint, disconnect. Second: leave now
  // (the checkpoint on disk still only names acknowledged rows).
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
    brokers: [config.kafka.bootstrap],
    registryUrl: config.registry.ccompatUrl,
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
    signal: controller.signal,
  });
  console.log(summaryLine(summary));
  if (summary.stopped) process.exitCode = 130;
});
