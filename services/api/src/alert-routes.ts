import { webhookTargetProblem } from '@touchstream/alerter';
import {
  alert,
  alertRule,
  alertRuleBody,
  alertRuleId,
  alertRuleProblems,
  alertsQuery,
  TouchstreamError,
} from '@touchstream/contracts';
import {
  deleteAlertRule,
  getAlertRule,
  getJourney,
  listAlertRules,
  listAlerts,
  type Store,
  saveAlertRule,
} from '@touchstream/store';
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';

const idParams = z.object({ id: alertRuleId });

const notFound = (id: string) =>
  new TouchstreamError('not_found', `There is no alert rule "${id}".`);

/** Alert rules (what to watch) and alerts (what fired); the alerter does the watching. */
export function alertRoutes(
  store: Store,
  webhooks: { allowInternal: boolean },
): FastifyPluginAsync {
  return async (instance) => {
    const app = instance.withTypeProvider<ZodTypeProvider>();

    app.put(
      '/v1/alert-rules/:id',
      {
        schema: {
          summary: 'Create or replace an alert rule',
          params: idParams,
          body: alertRuleBody,
          response: { 200: alertRule, 201: alertRule },
        },
      },
      async (request, reply) => {
        const { id } = request.params;
        const problems = alertRuleProblems(
          request.body,
          await getJourney(store, request.body.journey),
        );
        const { webhook_url: url } = request.body;
        const refused = url ? await webhookTargetProblem(url, webhooks) : undefined;
        if (refused) problems.push({ path: 'webhook_url', message: refused });
        if (problems.length > 0) {
          throw new TouchstreamError(
            'invalid_request',
            'The alert rule does not match a journey step.',
            problems,
          );
        }
        const existed = (await getAlertRule(store, id)) !== undefined;
        await saveAlertRule(store, id, request.body);
        return reply.status(existed ? 200 : 201).send({ id, ...request.body });
      },
    );

    app.get(
      '/v1/alert-rules',
      {
        schema: {
          summary: 'List alert rules',
          response: { 200: z.object({ alert_rules: z.array(alertRule) }) },
        },
      },
      async () => ({ alert_rules: await listAlertRules(store) }),
    );

    app.get(
      '/v1/alert-rules/:id',
      { schema: { summary: 'Get an alert rule', params: idParams, response: { 200: alertRule } } },
      async (request) => {
        const found = await getAlertRule(store, request.params.id);
        if (!found) throw notFound(request.params.id);
        return found;
      },
    );

    app.delete(
      '/v1/alert-rules/:id',
      { schema: { summary: 'Delete an alert rule', params: idParams } },
      async (request, reply) => {
        if (!(await deleteAlertRule(store, request.params.id))) throw notFound(request.params.id);
        return reply.status(204).send();
      },
    );

    app.get(
      '/v1/alerts',
      {
        schema: {
          summary: 'List alerts, newest first',
          querystring: alertsQuery,
          response: { 200: z.object({ alerts: z.array(alert) }) },
        },
      },
      async (request) => ({ alerts: await listAlerts(store, request.query.state) }),
    );
  };
}
