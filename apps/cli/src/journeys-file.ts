import { readFile } from 'node:fs/promises';
import {
  alertRule,
  alertRuleBody,
  alertRuleId,
  alertRuleProblems,
  detailsFromIssues,
  journey,
  journeyBody,
  journeyId,
} from '@touchstream/contracts';
import { listJourneys, type Store, saveAlertRule, saveJourney } from '@touchstream/store';
import { parse } from 'yaml';
import { z } from 'zod';

/** Journeys keyed by id, or a list of journeys with an `id` each. */
const journeysOf = z.union([z.record(journeyId, journeyBody), z.array(journey)]);

/** Alert rules keyed by id, or a list of rules with an `id` each. */
const alertRulesOf = z.union([z.record(alertRuleId, alertRuleBody), z.array(alertRule)]);

const journeysFile = z.strictObject({
  journeys: journeysOf.default({}),
  alert_rules: alertRulesOf.default({}),
});

const invalid = (path: string, problems: string[]) =>
  new Error(`TOUCHSTREAM_JOURNEYS_FILE: ${path} is invalid:\n  ${problems.join('\n  ')}`);

/**
 * Reads TOUCHSTREAM_JOURNEYS_FILE (YAML, of which JSON is a subset) and stores its
 * journeys, then its alert rules. A journey whose definition did not change keeps its
 * in-progress instances. Rules are checked against the stored journeys, those of the file
 * included, before any rule is stored: a rule naming a missing step stops the start.
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
    throw invalid(
      path,
      detailsFromIssues(parsed.error.issues).map((d) => `${d.path}: ${d.message}`),
    );
  }
  const journeys = Array.isArray(parsed.data.journeys)
    ? parsed.data.journeys
    : Object.entries(parsed.data.journeys).map(([id, body]) => ({ id, ...body }));
  for (const { id, ...body } of journeys) await saveJourney(store, id, journeyBody.parse(body));

  const rules = Array.isArray(parsed.data.alert_rules)
    ? parsed.data.alert_rules
    : Object.entries(parsed.data.alert_rules).map(([id, body]) => ({ id, ...body }));
  if (rules.length > 0) {
    const stored = await listJourneys(store);
    const problems = rules.flatMap(({ id, ...body }) =>
      alertRuleProblems(
        body,
        stored.find((j) => j.id === body.journey),
      ).map((d) => `alert_rules.${id}.${d.path}: ${d.message}`),
    );
    if (problems.length > 0) throw invalid(path, problems);
    for (const { id, ...body } of rules) await saveAlertRule(store, id, alertRuleBody.parse(body));
  }
  return journeys.map((j) => j.id);
}
