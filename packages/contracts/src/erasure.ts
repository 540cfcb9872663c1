import { z } from 'zod';

/** An erasure request as the API answers it (API.md, "Erasure and retention"). */
export const erasureResponse = z.object({
  erasure_id: z.string(),
  customer_id: z.string(),
  state: z
    .enum(['pending', 'done'])
    .describe('done: the rows are physically gone from storage, not only hidden.'),
  requested_at: z.string().describe('ISO 8601 UTC.'),
  done_at: z.string().optional().describe('ISO 8601 UTC; once done.'),
});
export type ErasureResponse = z.infer<typeof erasureResponse>;
