import type { ApiError } from './api.js';

const FIELDS: Record<string, string> = {
  order: 'Order',
  hold_constant: 'Same-value property',
  exclusions: 'Exclusion',
  event_type: 'event type',
  after_step: 'after step',
  before_step: 'before step',
};

/**
 * A field path of the API's `details` in the panel's words: `exclusions.0.after_step`
 * reads "Exclusion 1, after step", naming the control to fix rather than the JSON.
 */
export function describeField(path: string): string {
  const parts = path.split('.');
  const words: string[] = [];
  for (const part of parts) {
    // Positions count from 1 on the page, as the rows do.
    if (/^\d+$/.test(part) && words.length > 0) {
      words[words.length - 1] = `${words.at(-1)} ${Number(part) + 1}`;
    } else {
      words.push(FIELDS[part] ?? part);
    }
  }
  return words.join(', ');
}

/** A refused request as a sentence: the API's message, then each field it blames. */
export function describeApiError(error: ApiError): string {
  if (error.details.length === 0) return `The API refused the query: ${error.message}`;
  const fields = error.details.map((d) => `${describeField(d.path)}: ${d.message}`);
  return `The API refused the query: ${fields.join('; ')}`;
}
