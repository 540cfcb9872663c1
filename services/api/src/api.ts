import type { Store } from '@touchstream/store';
import { journeysRoutes } from './journeys-routes.js';

export interface ApiDeps {
  store: Store;
}

/** The query API: journeys and their drop-offs (funnels and alerts join it later). */
export function buildApi(deps: ApiDeps) {
  return { routes: journeysRoutes(deps.store) };
}
