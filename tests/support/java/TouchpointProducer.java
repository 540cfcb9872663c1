import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * A producer service on Apache Kafka's own Java client, for the tests: what a channel
 * service that writes to the touchpoints topic directly (no collector) sends.
 *
 * <p>Run in source-file mode, with no build:
 * {@code java -cp '<kafka libs>/*' TouchpointProducer.java <brokers> <topic> <codec>}.
 *
 * <p>stdin: one record per line, {@code base64(key) TAB base64(value)}, both UTF-8. Base64
 * keeps any key or value (tabs, line breaks, quotes, any Unicode) on its line without a
 * JSON parser, which the Kafka libraries do not offer to a single-file program.
 *
 * <p>stdout: {@code ack TAB index TAB partition TAB offset} per record, in input order,
 * then {@code metric TAB name TAB value} for the producer's batching and compression
 * figures. Exits 0 only when the brokers acknowledged every record; errors go to stderr.
 */
public final class TouchpointProducer {
  private static final List<String> METRICS =
      List.of("compression-rate-avg", "records-per-request-avg", "batch-size-avg");

  private TouchpointProducer() {}

  public static void main(String[] args) throws Exception {
    // The client logs through log4j, whose console appender takes System.out when it
    // starts: the protocol keeps stdout to itself and the logs go to stderr.
    PrintStream out = System.out;
    System.setOut(System.err);
    if (args.length != 3) {
      System.err.println("usage: TouchpointProducer <brokers> <topic> <none|gzip|snappy|lz4|zstd>");
      System.exit(2);
    }
    String brokers = args[0];
    String topic = args[1];
    String codec = args[2];

    List<String[]> records = readRecords();

    Properties config = new Properties();
    config.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
    config.put(ProducerConfig.CLIENT_ID_CONFIG, "touchpoint-producer-" + codec);
    config.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
    config.put(ProducerConfig.ACKS_CONFIG, "all");
    config.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
    // Records wait a little and share batches, so a batch holds many records compressed
    // together, as a busy service's would.
    config.put(ProducerConfig.LINGER_MS_CONFIG, "20");
    config.put(ProducerConfig.BATCH_SIZE_CONFIG, String.valueOf(64 * 1024));
    // A broker that is away fails the run within the test's time instead of hanging it.
    config.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
    config.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
    config.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
    config.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    config.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());

    int failed = 0;
    List<String> lines = new ArrayList<>();
    try (KafkaProducer<String, String> producer = new KafkaProducer<>(config)) {
      List<Future<RecordMetadata>> sends = new ArrayList<>(records.size());
      for (String[] record : records) {
        sends.add(producer.send(new ProducerRecord<>(topic, record[0], record[1])));
      }
      producer.flush();
      for (int i = 0; i < sends.size(); i++) {
        try {
          RecordMetadata acked = sends.get(i).get();
          lines.add("ack\t" + i + "\t" + acked.partition() + "\t" + acked.offset());
        } catch (ExecutionException e) {
          failed++;
          System.err.println("record " + i + " was not acknowledged: " + e.getCause());
        }
      }
      for (Map.Entry<MetricName, ? extends Metric> metric : producer.metrics().entrySet()) {
        MetricName name = metric.getKey();
        if (name.group().equals("producer-metrics") && METRICS.contains(name.name())) {
          lines.add("metric\t" + name.name() + "\t" + metric.getValue().metricValue());
        }
      }
    }
    for (String line : lines) out.println(line);
    out.flush();
    if (failed > 0) {
      System.err.println(failed + " of " + records.size() + " records were not acknowledged");
      System.exit(1);
    }
  }

  /** Every record of stdin, decoded; a malformed line ends the run before anything is sent. */
  private static List<String[]> readRecords() throws Exception {
    List<String[]> records = new ArrayList<>();
    Base64.Decoder base64 = Base64.getDecoder();
    BufferedReader in =
        new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    int number = 0;
    for (String line = in.readLine(); line != null; line = in.readLine()) {
      number++;
      if (line.isEmpty()) continue;
      String[] fields = line.split("\t", -1);
      if (fields.length != 2) {
        System.err.println("stdin line " + number + ": expected base64(key) TAB base64(value)");
        System.exit(2);
      }
      try {
        records.add(
            new String[] {
              new String(base64.decode(fields[0]), StandardCharsets.UTF_8),
              new String(base64.decode(fields[1]), StandardCharsets.UTF_8)
            });
      } catch (IllegalArgumentException e) {
        System.err.println("stdin line " + number + ": " + e.getMessage());
        System.exit(2);
      }
    }
    return records;
  }
}
