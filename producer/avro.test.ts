import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SCHEMA_FILE, SchemaFileError, readAvsc } from './avro.js';
import { frame, unframe } from './wire.js';

describe('the Avro schema and the wire format', () => {
  const { type } = readAvsc(SCHEMA_FILE);
  const record = { id: 527040, timestamp: Date.UTC(2024, 11, 31, 23, 59), stock_price: 1234.56, sales_trend: 150.25 };

  it('round-trips a record through Avro and the Confluent framing', () => {
    const message = frame(17, type.toBuffer(record));
    expect(message[0]).toBe(0);
    expect(message.readInt32BE(1)).toBe(17);
    const { schemaId, body } = unframe(message);
    expect(schemaId).toBe(17);
    expect(type.fromBuffer(body)).toEqual(record);
  });

  it('declares the timestamp as timestamp-millis and the id as a long', () => {
    const schema = JSON.parse(fs.readFileSync(SCHEMA_FILE, 'utf8'));
    const fields = Object.fromEntries(schema.fields.map((f: { name: string; type: unknown }) => [f.name, f.type]));
    expect(fields.timestamp).toEqual({ type: 'long', logicalType: 'timestamp-millis' });
    expect(fields.id).toBe('long');
  });

  it('refuses a message without the magic byte', () => {
    expect(() => unframe(Buffer.from([1, 0, 0, 0, 1, 2]))).toThrow(/not in the Confluent wire format/);
  });

  describe('a broken .avsc', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kpp-avsc-'));
    const write = (name: string, text: string) => {
      const file = path.join(dir, name);
      fs.writeFileSync(file, text);
      return file;
    };
    it.each([
      ['not-json.avsc', '{ "type": "record", ', /is not valid JSON/],
      ['bad-type.avsc', '{ "type": "record", "name": "X", "fields": [{ "name": "a", "type": "lng" }] }', /is not a valid Avro schema/],
      ['missing.avsc', null, /cannot read the Avro schema/],
      [
        'dropped-field.avsc',
        '{ "type": "record", "name": "X", "fields": [{ "name": "id", "type": "long" }, { "name": "timestamp", "type": "long" }, { "name": "stock_price", "type": "double" }] }',
        /lacks the field sales_trend, which the sink writes into synthetic_data: add it back/,
      ],
      [
        'optional-price.avsc',
        '{ "type": "record", "name": "X", "fields": [{ "name": "id", "type": "long" }, { "name": "timestamp", "type": "long" }, { "name": "stock_price", "type": ["null", "double"], "default": null }, { "name": "sales_trend", "type": "double" }] }',
        /the field stock_price has type \["null","double"\]; the sink needs one of/,
      ],
    ])('%s fails in one line naming the file', (name, text, message) => {
      const file = text === null ? path.join(dir, name) : write(name, text);
      expect(() => readAvsc(file)).toThrow(SchemaFileError);
      expect(() => readAvsc(file)).toThrow(message);
    });
  });
});
