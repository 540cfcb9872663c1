import type { Store } from '@touchstream/store';
import type { FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import { alertRoutes } from './alert-routes.js';
import { customersRoutes } from './customers-routes.js';
import type { ErasureBus } from './erasure.js';
import { buildErasurePurge } from './erasure-purge.js';
import { erasureRoutes } from './erasure-routes.js';
import { funnelRoutes } from './funnel-routes.js';
import { insightsRoutes } from './insights-routes.js';
import { journeysRoutes } from './journeys-routes.js';
import { reviewRoutes } from './review-routes.js';
import { schemaRoutes } from './schema-routes.js';

export interface ApiDeps {
  store: Store;
  /** TOUCHSTREAM_WEBHOOK_ALLOW_INTERNAL: may alert rules post to internal addresses. */
  webhooks?: { allowInternal: boolean };
  /**
   * Erasure of customers (API.md, "Erasure and retention"): its routes and the purge that
   * completes erasures run where the API can reach the touchpoints topic.
   */
  erasure?: { bus: ErasureBus; topics: { touchpoints: string }; logger: Logger };
  /** TOUCHSTREAM_PROPERTY_COLUMNS: the event properties stored as columns, for funnels. */
  propertyColumns?: readonly string[];
}

/** The query API: journeys and their drop-offs, funnels, customers and their erasure, alert rules and alerts, the event schema. */
export function buildApi(deps: ApiDeps) {
  const plugins = [
    journeysRoutes(deps.store, deps.webhooks ?? { allowInternal: false }),
    insightsRoutes(deps.store),
    alertRoutes(deps.store, deps.webhooks ?? { allowInternal: false }),
    funnelRoutes({ store: deps.store, columns: new Set(deps.propertyColumns) }),
    reviewRoutes({ store: deps.store }),
    customersRoutes(deps.store),
    schemaRoutes(),
  ];
  const erasure = deps.erasure && { store: deps.store, ...deps.erasure };
  if (erasure) plugins.push(erasureRoutes(erasure));
  const purge = erasure && buildErasurePurge(erasure);
  const routes: FastifyPluginAsync = async (app) => {
    for (const plugin of plugins) await app.register(plugin);
  };
  return {
    routes,
    async start() {
      purge?.start();
    },
    async stop() {
      await purge?.stop();
    },
  };
}
