import { decompress as zstdDecompress } from 'fzstd';
import kafkajs from 'kafkajs';
import snappyCodec from 'kafkajs-snappy';
import { compressFrame, decompressFrame } from 'lz4-napi';

/**
 * Producer services compress with whatever their Kafka client is set to, so the consumers
 * must read every codec Kafka has. kafkajs reads gzip itself and takes the others as
 * plug-ins, registered here once for the process. Each installs from the npm registry alone
 * (no install script, no binary fetched from anywhere else):
 * - snappy: kafkajs-snappy (pure JavaScript, and it reads the xerial framing that the
 *   Java client writes);
 * - lz4: lz4-napi, whose native builds come as npm packages per platform; Kafka's LZ4 is
 *   the standard LZ4 frame format;
 * - zstd: fzstd, a pure JavaScript decoder. Touchstream itself publishes uncompressed, so
 *   only decompression is needed; compressing with zstd is refused with a clear error.
 */
interface Codec {
  compress(encoder: { buffer: Buffer }): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}

const asBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);

const lz4Codec = (): Codec => ({
  compress: (encoder) => compressFrame(encoder.buffer),
  decompress: (buffer) => decompressFrame(buffer),
});

const zstdCodec = (): Codec => ({
  compress: async () => {
    throw new Error('zstd compression is not supported for publishing; zstd records are read');
  },
  decompress: async (buffer) => asBuffer(zstdDecompress(buffer)),
});

let registered = false;

/** Registers the snappy, lz4 and zstd codecs with kafkajs; idempotent. */
export function registerKafkaCodecs(): void {
  if (registered) return;
  registered = true;
  // A default import: Node cannot see this CommonJS export by name.
  const { CompressionCodecs, CompressionTypes } = kafkajs;
  const codecs = CompressionCodecs as Record<number, () => Codec>;
  codecs[CompressionTypes.Snappy] = snappyCodec;
  codecs[CompressionTypes.LZ4] = lz4Codec;
  codecs[CompressionTypes.ZSTD] = zstdCodec;
}
