declare module 'kafkajs-snappy' {
  /** A kafkajs compression codec factory (the package ships no types). */
  const codec: () => {
    compress(encoder: { buffer: Buffer }): Promise<Buffer>;
    decompress(buffer: Buffer): Promise<Buffer>;
  };
  export default codec;
}
