import { type Touchpoint, touchpointInput } from './event.js';

/**
 * The touchpoints topic carries one validated event per record as JSON, keyed by
 * customer_id, with the timestamp in epoch milliseconds.
 */
export function encodeTouchpoint(event: Touchpoint): { key: string; value: string } {
  return { key: event.customer_id, value: JSON.stringify(event) };
}

export type Decoded = { ok: true; event: Touchpoint } | { ok: false; reason: string };

/** Decodes a record; anything else on the topic is named, for the dead-letter queue. */
export function decodeTouchpoint(value: Buffer): Decoded {
  let json: unknown;
  try {
    json = JSON.parse(value.toString('utf8'));
  } catch {
    return { ok: false, reason: 'not_json' };
  }
  const parsed = touchpointInput.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, reason: `invalid_event: ${issue?.path.join('.')} ${issue?.message}` };
  }
  return { ok: true, event: parsed.data };
}
