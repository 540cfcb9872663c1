import { readFile } from 'node:fs/promises';
import { detailsFromIssues, journeyBody, journeyId } from '@touchstream/contracts';
import { type Store, saveJourney } from '@touchstream/store';
import { parse } from 'yaml';
import { z } from 'zod';

/** Journeys keyed by id, or a list of journeys with an `id` each. */
const journeysOf = z.union([
  z.record(journeyId, journeyBody),
  z.array(z.object({ id: journeyId }).and(journeyBody)),
]);

const journeysFile = z.strictObject({
  journeys: journeysOf.default({}),
  // Validated and stored by the alerting service; accepted here so one file holds both.
  alert_rules: z.unknown().optional(),
});

/**
 * Reads TOUCHSTREAM_JOURNEYS_FILE (YAML, of which JSON is a subset) and stores its
 * journeys. A journey whose definition did not change keeps its in-progress instances.
 */
export async function loadJourneysFile(store: Store, path: string) {
  const text = await readFile(path, 'utf8').catch((error: Error) => {
    throw new Error(`TOUCHSTREAM_JOURNEYS_FILE: cannot read ${path}: ${error.message}`);
  });
  let document: unknown;
  try {
    document = parse(text);
  } catch (error) {
    throw new Error(
      `TOUCHSTREAM_JOURNEYS_FILE: ${path} is not YAML or JSON: ${(error as Error).message}`,
    );
  }
  const parsed = journeysFile.safeParse(document ?? {});
  if (!parsed.success) {
    const problems = detailsFromIssues(parsed.error.issues).map((d) => `${d.path}: ${d.message}`);
    throw new Error(`TOUCHSTREAM_JOURNEYS_FILE: ${path} is invalid:\n  ${problems.join('\n  ')}`);
  }
  const journeys = Array.isArray(parsed.data.journeys)
    ? parsed.data.journeys
    : Object.entries(parsed.data.journeys).map(([id, body]) => ({ id, ...body }));
  for (const { id, ...body } of journeys) await saveJourney(store, id, journeyBody.parse(body));
  return journeys.map((j) => j.id);
}
