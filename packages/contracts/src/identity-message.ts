import { z } from 'zod';

/**
 * What the processor tells the partition that owns an id, through the touchpoints topic
 * (keyed by that id, so it comes in order with the id's events; API.md, "Identities"):
 * - `linked`: the anonymous id got a link; file its events under the customer that stands.
 * - `restitch`: the customer's events changed under it; recompute its facts.
 */
export const identityMessage = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('linked'), anonymous_id: z.string().min(1).max(128) }),
  z.object({ kind: z.literal('restitch'), customer_id: z.string().min(1).max(128) }),
]);
export type IdentityMessage = z.infer<typeof identityMessage>;
