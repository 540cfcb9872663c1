import { DEFAULT_MAX_FUTURE_MS, durationMs } from '@touchstream/contracts';
import { z } from 'zod';

const list = z
  .string()
  .transform((s) =>
    s
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item.length > 0),
  )
  .refine((items) => items.length > 0, { message: 'must list at least one value' });

const identifier = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a plain identifier');

/** Every `TOUCHSTREAM_*` variable of the contract, with its default. */
const environment = z.strictObject({
  TOUCHSTREAM_HOST: z.string().min(1).default('127.0.0.1'),
  TOUCHSTREAM_PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  TOUCHSTREAM_DATA_DIR: z.string().min(1).default('./.touchstream'),
  TOUCHSTREAM_CLICKHOUSE_URL: z.url({ protocol: /^https?$/ }).optional(),
  TOUCHSTREAM_CLICKHOUSE_USER: z.string().min(1).default('default'),
  TOUCHSTREAM_CLICKHOUSE_PASSWORD: z.string().default(''),
  TOUCHSTREAM_CLICKHOUSE_DATABASE: identifier.default('touchstream'),
  TOUCHSTREAM_KAFKA_BROKERS: list.optional(),
  TOUCHSTREAM_TOPIC_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9._-]*$/, 'must contain only letters, digits, . _ -')
    .default('touchstream.'),
  TOUCHSTREAM_INGEST_KEYS: list.optional(),
  TOUCHSTREAM_QUERY_KEYS: list.optional(),
  TOUCHSTREAM_ADMIN_KEYS: list.optional(),
  TOUCHSTREAM_RETENTION: durationMs
    .refine((ms) => ms >= 1000, { message: 'must be at least 1s' })
    .optional(),
  TOUCHSTREAM_ALERT_INTERVAL: durationMs.default(60_000),
  TOUCHSTREAM_IDLE_WATERMARK: durationMs.default(10_000),
  TOUCHSTREAM_ALLOWED_LATENESS: durationMs.default(0),
  TOUCHSTREAM_MAX_FUTURE: durationMs.default(DEFAULT_MAX_FUTURE_MS),
  TOUCHSTREAM_WEBHOOK_ALLOW_INTERNAL: z
    .enum(['true', 'false'], { message: 'must be true or false' })
    .default('false')
    .transform((v) => v === 'true'),
  TOUCHSTREAM_JOURNEYS_FILE: z.string().min(1).optional(),
  TOUCHSTREAM_PROPERTY_COLUMNS: list
    .pipe(z.array(identifier).max(20, 'at most 20 properties'))
    .transform((names) => [...new Set(names)])
    .optional(),
  TOUCHSTREAM_LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('info'),
});

export const CONFIG_VARIABLES = Object.keys(environment.shape) as readonly string[];

export interface Config {
  http: { host: string; port: number };
  dataDir: string;
  clickhouse: { url?: string; user: string; password: string; database: string };
  kafka: { brokers?: string[]; topicPrefix: string };
  auth: { ingestKeys: string[]; queryKeys: string[]; adminKeys: string[] };
  /** Rows older than this by event time are deleted by storage; unset: kept forever. */
  retentionMs?: number;
  alertIntervalMs: number;
  idleWatermarkMs: number;
  allowedLatenessMs: number;
  /** How far ahead of the receiving clock an event time may be. */
  maxFutureMs: number;
  /** May webhooks reach loopback, private and link-local addresses. */
  webhookAllowInternal: boolean;
  journeysFile?: string;
  /** Event properties stored as columns of their own, for funnels that hold or break down by them. */
  propertyColumns: string[];
  logLevel: z.infer<typeof environment>['TOUCHSTREAM_LOG_LEVEL'];
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Reads the configuration once, at start. Unknown `TOUCHSTREAM_*` variables are errors
 * too: a misspelt `TOUCHSTREAM_KAFKA_BROKER` must not silently mean the embedded bus.
 */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const ours: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    // An empty value means unset, as in `docker run -e NAME=` or a blank line of an env file.
    if (name.startsWith('TOUCHSTREAM_') && value !== undefined && value !== '') ours[name] = value;
  }
  const parsed = environment.safeParse(ours);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) =>
        issue.code === 'unrecognized_keys'
          ? `unknown variable ${issue.keys.join(', ')}`
          : `${issue.path.join('.')}: ${issue.message}`,
      ),
    );
  }
  const e = parsed.data;
  // A key in two lists would open both to whoever holds it: the lists must be of
  // different keys.
  const lists = [
    ['TOUCHSTREAM_INGEST_KEYS', e.TOUCHSTREAM_INGEST_KEYS ?? []],
    ['TOUCHSTREAM_QUERY_KEYS', e.TOUCHSTREAM_QUERY_KEYS ?? []],
    ['TOUCHSTREAM_ADMIN_KEYS', e.TOUCHSTREAM_ADMIN_KEYS ?? []],
  ] as const;
  const overlaps = lists.flatMap(([name, keys], i) =>
    lists.slice(0, i).flatMap(([earlier, others]) => {
      const shared = keys.filter((key) => others.includes(key));
      return shared.length === 0
        ? []
        : [
            `${name}: ${shared.length === 1 ? 'a key is' : `${shared.length} keys are`} also in ${earlier}; the key lists must not share keys`,
          ];
    }),
  );
  if (overlaps.length > 0) throw new ConfigError(overlaps);
  return {
    http: { host: e.TOUCHSTREAM_HOST, port: e.TOUCHSTREAM_PORT },
    dataDir: e.TOUCHSTREAM_DATA_DIR,
    clickhouse: {
      url: e.TOUCHSTREAM_CLICKHOUSE_URL,
      user: e.TOUCHSTREAM_CLICKHOUSE_USER,
      password: e.TOUCHSTREAM_CLICKHOUSE_PASSWORD,
      database: e.TOUCHSTREAM_CLICKHOUSE_DATABASE,
    },
    kafka: { brokers: e.TOUCHSTREAM_KAFKA_BROKERS, topicPrefix: e.TOUCHSTREAM_TOPIC_PREFIX },
    auth: {
      ingestKeys: e.TOUCHSTREAM_INGEST_KEYS ?? [],
      queryKeys: e.TOUCHSTREAM_QUERY_KEYS ?? [],
      adminKeys: e.TOUCHSTREAM_ADMIN_KEYS ?? [],
    },
    retentionMs: e.TOUCHSTREAM_RETENTION,
    alertIntervalMs: e.TOUCHSTREAM_ALERT_INTERVAL,
    idleWatermarkMs: e.TOUCHSTREAM_IDLE_WATERMARK,
    allowedLatenessMs: e.TOUCHSTREAM_ALLOWED_LATENESS,
    maxFutureMs: e.TOUCHSTREAM_MAX_FUTURE,
    webhookAllowInternal: e.TOUCHSTREAM_WEBHOOK_ALLOW_INTERNAL,
    journeysFile: e.TOUCHSTREAM_JOURNEYS_FILE,
    propertyColumns: e.TOUCHSTREAM_PROPERTY_COLUMNS ?? [],
    logLevel: e.TOUCHSTREAM_LOG_LEVEL,
  };
}
