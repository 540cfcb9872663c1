import { z } from 'zod';

/**
 * Where notices are posted (alert rules, scheduled reviews): http or https, and no control
 * characters. Whether its host is an internal address is judged where it is saved, on the
 * name's addresses, and again at each delivery.
 */
export const webhookUrl = z
  .url({ protocol: /^https?$/ })
  .max(2048)
  .refine((url) => !/\p{Cc}/u.test(url), { message: 'must not hold control characters' });
