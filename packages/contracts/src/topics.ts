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

/**
 * Headers of the records the processor writes to the touchpoints topic itself to stitch
 * identities (API.md, "Identities"); producers must not set them. `control` marks a
 * message that is not an event; `customer` carries an anonymous event to the partition of
 * the customer its id is linked to.
 */
export const IDENTITY_HEADERS = {
  control: 'touchstream_control',
  customer: 'touchstream_customer',
} as const;
