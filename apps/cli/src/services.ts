import { buildAlerter } from '@touchstream/alerter';
import { buildApi } from '@touchstream/api';
import { buildCollector } from '@touchstream/collector';
import { buildDashboard, type DashboardDeps } from '@touchstream/dashboard';
import { buildProcessor } from '@touchstream/processor';
import type { ServiceFactory, ServiceName } from './runtime.js';

/**
 * The API with the dashboard: the page calls /v1 from the browser, so it is served wherever
 * the API is, from the same origin. `dashboard.assetsDir` serves another build of the page.
 */
export function apiService(dashboard: DashboardDeps = {}): ServiceFactory {
  return async ({ store, config, bus, topics, logger }) => {
    const api = buildApi({
      store,
      webhooks: { allowInternal: config.webhookAllowInternal },
      propertyColumns: config.propertyColumns,
      erasure: { bus, topics, logger: logger.child({ component: 'erasure' }) },
    });
    const page = buildDashboard(dashboard);
    return {
      routes: async (app) => {
        await app.register(api.routes);
        await app.register(page.routes);
      },
      start: api.start,
      stop: api.stop,
    };
  };
}

/** The services `touchstream start` can run. */
export const FACTORIES: Partial<Record<ServiceName, ServiceFactory>> = {
  api: apiService(),
  collector: async ({ bus, topics, metrics, config }) =>
    buildCollector({ bus, topics, metrics, maxFutureMs: config.maxFutureMs }),
  processor: async ({ bus, store, topics, metrics, logger, config }) =>
    buildProcessor({
      bus,
      store,
      topics,
      metrics,
      logger,
      groupPrefix: config.kafka.topicPrefix,
      maxFutureMs: config.maxFutureMs,
      journeys: {
        allowedLatenessMs: config.allowedLatenessMs,
        idleWatermarkMs: config.idleWatermarkMs,
      },
    }),
  alerter: async ({ store, metrics, logger, config }) => {
    return buildAlerter({
      store,
      metrics,
      logger,
      intervalMs: config.alertIntervalMs,
      delivery: { allowInternal: config.webhookAllowInternal },
    });
  },
};
