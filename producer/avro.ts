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
  try {
    // timestamp-millis stays a plain long (ms): no Date objects on the hot path.
    const type = avro.Type.forSchema(json as avro.Schema);
    return { type, text: JSON.stringify(json) };
  } catch (err) {
    throw new SchemaFileError(`${file} is not a valid Avro schema: ${(err as Error).message}`);
  }
}
