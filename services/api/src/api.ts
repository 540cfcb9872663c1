import type { Store } from '@touchstream/store';
import type { FastifyPluginAsync } from 'fastify';
import { alertRoutes } from './alert-routes.js';
import { customersRoutes } from './customers-routes.js';
import { funnelRoutes } from './funnel-routes.js';
import { journeysRoutes } from './journeys-routes.js';
import { schemaRoutes } from './schema-routes.js';

export interface ApiDeps {
  store: Store;
  /** TOUCHSTREAM_WEBHOOK_ALLOW_INTERNAL: may alert rules post to internal addresses. */
  webhooks?: { allowInternal: boolean };
}

/** The query API: journeys and their drop-offs, funnels, customers, alert rules and alerts, the event schema. */
export function buildApi(deps: ApiDeps) {
  const plugins = [
    journeysRoutes(deps.store),
    alertRoutes(deps.store, deps.webhooks ?? { allowInternal: false }),
    funnelRoutes({ store: deps.store }),
    customersRoutes(deps.store),
    schemaRoutes(),
  ];
  const routes: FastifyPluginAsync = async (app) => {
    for (const plugin of plugins) await app.register(plugin);
  };
  return { routes };
}
