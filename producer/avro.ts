// The record schema lives in schema/synthetic_data.avsc (or a file given
// with --schema). This module reads and checks an .avsc: its avsc Type is
// what the producer encodes records with, its text what the registry stores.
// SyntheticRecord is a valid row's shape (validate.ts makes them).
import fs from 'node:fs';
import path from 'node:path';
import avro from 'avsc';
import { ROOT } from '#lib/config.mjs';
import { UserError } from '#lib/errors.mjs';

export const SCHEMA_FILE = path.join(ROOT, 'producer', 'schema', 'synthetic_data.avsc');

export interface SyntheticRecord {
  id: number;
  /** Milliseconds since the epoch, UTC. */
  timestamp: number;
  stock_price: number;
  sales_trend: number;
}

export class SchemaFileError extends UserError {}

/** Parses an .avsc file; a broken one fails with the file and the reason in one line. */
export function readAvsc(file: string): { type: avro.Type; text: string } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new SchemaFileError(`cannot read the Avro schema ${file}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new SchemaFileError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  let type: avro.Type;
  try {
    // timestamp-millis stays a plain long (ms): no Date objects on the hot path.
    type = avro.Type.forSchema(json as avro.Schema);
  } catch (err) {
    throw new SchemaFileError(`${file} is not a valid Avro schema: ${(err as Error).message}`);
  }
  const problem = sinkFieldProblem(json);
  if (problem) throw new SchemaFileError(`${file}: ${problem}`);
  return { type, text: JSON.stringify(json) };
}

/** The fields the sink writes into synthetic_data, and the Avro types it can cast to their columns. */
const SINK_FIELDS: Record<string, string[]> = {
  id: ['long', 'int'],
  timestamp: ['long'],
  stock_price: ['double', 'float', 'long', 'int'],
  sales_trend: ['double', 'float', 'long', 'int'],
};

/**
 * Why records of this schema could not land, or null. The registry's BACKWARD
 * check lets a schema drop a field; the sink then dead-letters every record
 * while the producer reports them sent. Pure.
 */
export function sinkFieldProblem(schema: unknown): string | null {
  const fields = (schema as { type?: unknown; fields?: unknown })?.fields;
  if ((schema as { type?: unknown })?.type !== 'record' || !Array.isArray(fields)) return 'the schema must be a record';
  const byName = new Map(fields.map((f: { name: string; type: unknown }) => [f.name, f.type]));
  for (const [name, allowed] of Object.entries(SINK_FIELDS)) {
    if (!byName.has(name)) return `the schema lacks the field ${name}, which the sink writes into synthetic_data: add it back`;
    const t = byName.get(name);
    const base = typeof t === 'string' ? t : (t as { type?: unknown })?.type;
    if (typeof base !== 'string' || !allowed.includes(base)) {
      return `the field ${name} has type ${JSON.stringify(t)}; the sink needs one of ${allowed.join(', ')} (not a union: every row must carry it)`;
    }
  }
  return null;
}
