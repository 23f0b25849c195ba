// The producer's work without Kafka, to measure the reader: reads a Parquet
// file, validates and encodes every row chunk by chunk as produce.ts does,
// and prints rows/s and peak RSS. Run it with the producer's heap:
//   npm run -s build && /usr/bin/time -v node --max-old-space-size=96 dist/producer/read-bench.js <file.parquet> [sliceRows]
import { SCHEMA_FILE, readAvsc } from './avro.js';
import type { SyntheticRecord } from './avro.js';
import { chunkRanges, shapeChunk } from './chunk.js';
import { SLICE_ROWS, openParquet, readAhead, readRowGroups } from './parquet.js';
import { frame } from './wire.js';

const file = process.argv[2];
const sliceRows = Number(process.argv[3] ?? SLICE_ROWS);
if (!file || !(sliceRows > 0)) {
  console.error('usage: node dist/producer/read-bench.js <file.parquet> [sliceRows]');
  process.exit(2);
}
const source = await openParquet(file);
const { type } = readAvsc(SCHEMA_FILE);
const opts = { partitions: 4, encode: (record: SyntheticRecord) => frame(1, type.toBuffer(record)), file };
const started = performance.now();
let sent = 0;
let rejected = 0;
for await (const group of readAhead(readRowGroups(source, file, 0, sliceRows))) {
  for (const [start, end] of chunkRanges(group.rowStart, group.rows, 0, Infinity, 4096)) {
    const chunk = shapeChunk(group, start, end, opts);
    sent += chunk.sent;
    rejected += chunk.rejected.length;
  }
}
const seconds = (performance.now() - started) / 1000;
console.log(
  `${file}: ${source.rows.toLocaleString('en')} rows in ${source.rowGroups.length} row groups; encoded ${sent.toLocaleString('en')}, rejected ${rejected}; ${seconds.toFixed(2)} s, ${Math.round(sent / seconds).toLocaleString('en')} rows/s, peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MB`,
);
