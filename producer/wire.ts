// The Confluent wire format: magic byte 0, the schema id as a big-endian
// int32, then the Avro binary body. Every Confluent-compatible consumer
// (Connect's Avro converters included) expects exactly this framing.
export const MAGIC_BYTE = 0;
const HEADER = 5;

export function frame(schemaId: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(HEADER + body.length);
  out[0] = MAGIC_BYTE;
  out.writeInt32BE(schemaId, 1);
  body.copy(out, HEADER);
  return out;
}

export function unframe(message: Buffer): { schemaId: number; body: Buffer } {
  if (message.length < HEADER || message[0] !== MAGIC_BYTE) {
    throw new Error('not in the Confluent wire format (magic byte 0 and a 4-byte schema id)');
  }
  return { schemaId: message.readInt32BE(1), body: message.subarray(HEADER) };
}
