/** Kafka topic names; every topic carries the configured prefix. */
export function topicNames(prefix: string) {
  return {
    touchpoints: `${prefix}touchpoints`,
    touchpointsDlq: `${prefix}touchpoints_dlq`,
  } as const;
}
export type TopicNames = ReturnType<typeof topicNames>;

/** Provenance headers on every dead-lettered record. */
export const DLQ_HEADERS = {
  reason: 'dlq_reason',
  topic: 'dlq_topic',
  partition: 'dlq_partition',
  offset: 'dlq_offset',
} as const;
