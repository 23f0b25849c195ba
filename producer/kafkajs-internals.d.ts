// kafkajs's murmur2, used only by partition.test.ts as the reference.
declare module 'kafkajs/src/producer/partitioners/default/murmur2.js' {
  const murmur2: (key: Buffer | string) => number;
  export default murmur2;
}
