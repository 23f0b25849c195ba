// What a file should leave in the table: the distinct ids of its valid rows.
// `npm start` holds the table against it once the sink has caught up, so a
// load is called landed only when every row sent is present.
import { rowAt } from './chunk.js';
import { openParquet, readRowGroups } from './parquet.js';
import { validateRow } from './validate.js';

export async function distinctValidIds(file: string): Promise<number[]> {
  const source = await openParquet(file);
  const ids = new Set<number>();
  for await (const group of readRowGroups(source, file)) {
    for (let i = 0; i < group.rows; i++) {
      const verdict = validateRow(rowAt(group, i));
      if (verdict.ok) ids.add(verdict.record.id);
    }
  }
  return [...ids];
}
