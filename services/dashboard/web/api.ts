import type {
  Alert,
  DropoffResponse,
  FunnelExclusion,
  FunnelResponse,
  InsightsResponse,
  Journey,
  Review,
} from '@touchstream/contracts';

const KEY_STORAGE = 'touchstream.query_key';

/** One faulty field of a refused request, as the API's `details` name it. */
export interface ApiErrorDetail {
  path: string;
  message: string;
}

/** An answer other than 2xx, with the API's own message and the fields it blames. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details: readonly ApiErrorDetail[] = [],
  ) {
    super(message);
  }
}

/** The funnel options the page offers; what is left out is the API's default. */
export interface FunnelOptions {
  order?: 'strict' | 'any';
  exclusions?: FunnelExclusion[];
  hold_constant?: string[];
}

export interface ApiClientDeps {
  /**
   * Asks the user for a query key; resolves with it. `reason` says why (none yet, or
   * the one kept was refused).
   */
  askKey(reason: string): Promise<string>;
}

/**
 * The /v1 API as the page uses it. The query key is asked once and kept in localStorage;
 * a 401 (no key, or a key since removed from the server) asks again and retries.
 */
export function buildApiClient(deps: ApiClientDeps) {
  let asking: Promise<string> | undefined;

  // Concurrent requests that all get a 401 share one prompt.
  const askOnce = (reason: string) => {
    asking ??= deps.askKey(reason).then((key) => {
      localStorage.setItem(KEY_STORAGE, key);
      asking = undefined;
      return key;
    });
    return asking;
  };

  async function request<T>(path: string, init: RequestInit = {}): Promise<T> {
    for (;;) {
      const key = localStorage.getItem(KEY_STORAGE);
      const headers = new Headers(init.headers);
      if (key) headers.set('authorization', `Bearer ${key}`);
      if (init.body) headers.set('content-type', 'application/json');
      const response = await fetch(path, { ...init, headers });
      if (response.status === 401 || response.status === 403) {
        await askOnce(
          key
            ? `The key kept in this browser was refused (${response.status}): enter a query key.`
            : 'This Touchstream needs a query key (TOUCHSTREAM_QUERY_KEYS).',
        );
        continue;
      }
      const body = await response.json().catch(() => undefined);
      if (!response.ok) {
        const message = body?.error?.message ?? `${response.status} ${response.statusText}`;
        const details = Array.isArray(body?.error?.details) ? body.error.details : [];
        throw new ApiError(response.status, message, details);
      }
      return body as T;
    }
  }

  const range = (from: number, to: number) =>
    new URLSearchParams({ from: new Date(from).toISOString(), to: new Date(to).toISOString() });

  return {
    journeys: async () => (await request<{ journeys: Journey[] }>('v1/journeys')).journeys,
    dropoffs: (journey: string, from: number, to: number) =>
      request<DropoffResponse>(
        `v1/journeys/${encodeURIComponent(journey)}/dropoffs?${range(from, to)}`,
      ),
    funnel: (journey: string, from: number, to: number, options: FunnelOptions = {}) =>
      request<FunnelResponse>('v1/funnels/query', {
        method: 'POST',
        body: JSON.stringify({
          journey,
          from: new Date(from).toISOString(),
          to: new Date(to).toISOString(),
          ...options,
        }),
      }),
    insights: (journey: string, fromStep: string, from: number, to: number) =>
      request<InsightsResponse>(
        `v1/journeys/${encodeURIComponent(journey)}/dropoffs/${encodeURIComponent(fromStep)}/insights?${range(from, to)}`,
      ),
    /** The journey's last `period` (`24h`, `7d`, `30d`) against the one before it. */
    review: (journey: string, period: string) =>
      request<Review>(
        `v1/journeys/${encodeURIComponent(journey)}/review?${new URLSearchParams({ period })}`,
      ),
    alerts: async () => (await request<{ alerts: Alert[] }>('v1/alerts?state=all')).alerts,
  };
}

export type ApiClient = ReturnType<typeof buildApiClient>;
