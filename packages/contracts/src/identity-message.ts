import { z } from 'zod';

const id = z.string().min(1).max(128);

/**
 * What the processor tells the partition that owns an id, through the touchpoints topic
 * (keyed by that id, so it comes in order with the id's events; API.md, "Identities"):
 * - `linked`: the anonymous id got a link; file its events under the customer that stands.
 * - `restitch`: the customer's events changed under it; recompute its facts.
 * - `erase` (sent by the API, one per id of an erasure): what came before it in the
 *   partition is erased, what comes after is a new history (API.md, "Erasure and retention").
 */
export const identityMessage = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('linked'), anonymous_id: id }),
  z.object({ kind: z.literal('restitch'), customer_id: id }),
  z.object({
    kind: z.literal('erase'),
    erasure_id: z.string().min(1).max(64),
    /** The id whose partition this message is for (its key). */
    id,
    customer_id: id,
    /** Every id of the erasure: the customer and its linked anonymous ids. */
    ids: z.array(id).min(1).max(100_000),
  }),
]);
export type IdentityMessage = z.infer<typeof identityMessage>;
export type EraseMessage = Extract<IdentityMessage, { kind: 'erase' }>;

/** The key a message travels under: the id whose partition acts on it. */
export function identityMessageKey(message: IdentityMessage): string {
  if (message.kind === 'linked') return message.anonymous_id;
  if (message.kind === 'restitch') return message.customer_id;
  return message.id;
}
