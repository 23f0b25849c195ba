// kafkajs's murmur2, used only by partition.test.ts as the reference.
declare module 'kafkajs/src/producer/partitioners/default/murmur2.js' {
  const murmur2: (key: Buffer | string) => number;
  export default murmur2;
}

// kafkajs's protocol errors by code, used only by tests to fail as a broker does.
declare module 'kafkajs/src/protocol/error.js' {
  const errors: { createErrorFromCode: (code: number) => import('kafkajs').KafkaJSProtocolError };
  export default errors;
}

// kafkajs's record encoding, as patched (patches/kafkajs+2.2.4.patch); used
// only by kafkajs-patch.test.ts to hold the patched paths to the original ones.
declare module 'kafkajs/src/protocol/encoder.js' {
  class Encoder {
    constructor(initialSize?: number);
    get buffer(): Buffer;
    writeVarLong(value: unknown): Encoder;
    static sizeOfVarLong(value: unknown): number;
  }
  export default Encoder;
}
declare module 'kafkajs/src/utils/long.js' {
  const Long: { fromNumber(n: number): unknown };
  export default Long;
}
declare module 'kafkajs/src/protocol/recordBatch/record/v0/index.js' {
  interface RecordArgs {
    offsetDelta: number;
    timestampDelta: number;
    key?: string | Buffer | null;
    value?: Buffer | null;
    headers?: Record<string, string | string[]>;
  }
  const Record: ((args: RecordArgs) => unknown) & {
    writeRecord(encoder: import('kafkajs/src/protocol/encoder.js').default, args: RecordArgs): unknown;
  };
  export default Record;
}
declare module 'kafkajs/src/protocol/recordBatch/v0/index.js' {
  export function RecordBatch(args: Record<string, unknown>): Promise<{ buffer: Buffer }>;
}
