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
