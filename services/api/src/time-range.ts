import { isoTimeInRange } from '@touchstream/contracts';
import { z } from 'zod';

const WEEK_MS = 7 * 86_400_000;

/** `?from=&to=`: ISO 8601 with a zone; by default the last seven days, as funnel tools do. */
export const timeRangeQuery = z
  .object({
    from: isoTimeInRange.optional(),
    to: isoTimeInRange.optional(),
  })
  .transform(({ from, to }) => {
    const end = to ?? Date.now();
    return { from: from ?? end - WEEK_MS, to: end };
  })
  .refine((r) => r.from < r.to, { message: 'from must be before to', path: ['from'] });
