import { buildAlerter } from '@touchstream/alerter';
import { buildApi } from '@touchstream/api';
import { buildCollector } from '@touchstream/collector';
import { buildProcessor } from '@touchstream/processor';
import type { ServiceFactory, ServiceName } from './runtime.js';

/** The services `touchstream start` can run. */
export const FACTORIES: Partial<Record<ServiceName, ServiceFactory>> = {
  api: async ({ store }) => buildApi({ store }),
  collector: async ({ bus, topics, metrics }) => buildCollector({ bus, topics, metrics }),
  processor: async ({ bus, store, topics, metrics, logger, config }) => {
    const processor = buildProcessor({
      bus,
      store,
      topics,
      metrics,
      logger,
      groupPrefix: config.kafka.topicPrefix,
      journeys: {
        allowedLatenessMs: config.allowedLatenessMs,
        idleWatermarkMs: config.idleWatermarkMs,
      },
    });
    await processor.start();
    return processor;
  },
  alerter: async ({ store, metrics, logger, config }) => {
    const alerter = buildAlerter({ store, metrics, logger, intervalMs: config.alertIntervalMs });
    await alerter.start();
    return alerter;
  },
};
