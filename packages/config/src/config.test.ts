import { readdir, readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES, ConfigError, loadConfig } from './config.js';

describe('loadConfig', () => {
  it('applies the contract defaults', () => {
    const config = loadConfig({});
    expect(config.http).toEqual({ host: '127.0.0.1', port: 3000 });
    expect(config.dataDir).toBe('./.touchstream');
    expect(config.clickhouse).toEqual({
      url: undefined,
      user: 'default',
      password: '',
      database: 'touchstream',
    });
    expect(config.kafka).toEqual({ brokers: undefined, topicPrefix: 'touchstream.' });
    expect(config.auth).toEqual({ ingestKeys: [], queryKeys: [], adminKeys: [] });
    expect(config.retentionMs).toBeUndefined();
    expect(config.alertIntervalMs).toBe(60_000);
    expect(config.idleWatermarkMs).toBe(10_000);
    expect(config.allowedLatenessMs).toBe(0);
    expect(config.maxFutureMs).toBe(3_600_000);
    expect(config.logLevel).toBe('info');
  });

  it('parses lists, durations and ports', () => {
    const config = loadConfig({
      TOUCHSTREAM_PORT: '0',
      TOUCHSTREAM_KAFKA_BROKERS: 'a:9092, b:9092,',
      TOUCHSTREAM_INGEST_KEYS: 'k1,k2',
      TOUCHSTREAM_ALERT_INTERVAL: '500ms',
      TOUCHSTREAM_IDLE_WATERMARK: '2m',
      TOUCHSTREAM_ALLOWED_LATENESS: '1h',
      TOUCHSTREAM_MAX_FUTURE: '5m',
    });
    expect(config.http.port).toBe(0);
    expect(config.kafka.brokers).toEqual(['a:9092', 'b:9092']);
    expect(config.auth.ingestKeys).toEqual(['k1', 'k2']);
    expect(config.alertIntervalMs).toBe(500);
    expect(config.idleWatermarkMs).toBe(120_000);
    expect(config.allowedLatenessMs).toBe(3_600_000);
    expect(config.maxFutureMs).toBe(300_000);
  });

  it('treats empty values as unset and ignores other variables', () => {
    const config = loadConfig({ TOUCHSTREAM_KAFKA_BROKERS: '', PATH: '/bin' });
    expect(config.kafka.brokers).toBeUndefined();
  });

  it.each([
    ['TOUCHSTREAM_PORT', '70000'],
    ['TOUCHSTREAM_PORT', 'http'],
    ['TOUCHSTREAM_ALERT_INTERVAL', '60'],
    ['TOUCHSTREAM_IDLE_WATERMARK', 'soon'],
    ['TOUCHSTREAM_MAX_FUTURE', '1'],
    ['TOUCHSTREAM_CLICKHOUSE_URL', 'not a url'],
    ['TOUCHSTREAM_CLICKHOUSE_DATABASE', 'drop table'],
    ['TOUCHSTREAM_LOG_LEVEL', 'loud'],
    ['TOUCHSTREAM_KAFKA_BROKERS', ' , '],
  ])('rejects %s=%s naming the variable', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrowError(new RegExp(name));
  });

  it('refuses a key that is both an ingest and a query key, without printing it', () => {
    const load = () =>
      loadConfig({ TOUCHSTREAM_INGEST_KEYS: 'k1,shared', TOUCHSTREAM_QUERY_KEYS: 'shared,q1' });
    expect(load).toThrowError(
      /TOUCHSTREAM_QUERY_KEYS: a key is also in TOUCHSTREAM_INGEST_KEYS; the key lists must not share keys/,
    );
    expect(load).not.toThrowError(/shared/);
  });

  it('refuses an admin key that is also a query key', () => {
    expect(() =>
      loadConfig({ TOUCHSTREAM_QUERY_KEYS: 'q1,both', TOUCHSTREAM_ADMIN_KEYS: 'both' }),
    ).toThrowError(/TOUCHSTREAM_ADMIN_KEYS: a key is also in TOUCHSTREAM_QUERY_KEYS/);
  });

  it('reads admin keys and a retention', () => {
    const config = loadConfig({ TOUCHSTREAM_ADMIN_KEYS: 'a1, a2', TOUCHSTREAM_RETENTION: '400d' });
    expect(config.auth.adminKeys).toEqual(['a1', 'a2']);
    expect(config.retentionMs).toBe(400 * 86_400_000);
    expect(() => loadConfig({ TOUCHSTREAM_RETENTION: '0s' })).toThrowError(/TOUCHSTREAM_RETENTION/);
  });

  it('reads property columns: plain identifiers, each once', () => {
    expect(loadConfig({}).propertyColumns).toEqual([]);
    expect(
      loadConfig({ TOUCHSTREAM_PROPERTY_COLUMNS: 'plan, product_id,plan' }).propertyColumns,
    ).toEqual(['plan', 'product_id']);
    expect(() => loadConfig({ TOUCHSTREAM_PROPERTY_COLUMNS: 'plan,product-id' })).toThrowError(
      /TOUCHSTREAM_PROPERTY_COLUMNS.*plain identifier/,
    );
  });

  it('rejects unknown TOUCHSTREAM_ variables', () => {
    expect(() => loadConfig({ TOUCHSTREAM_KAFKA_BROKER: 'x:1' })).toThrowError(
      /unknown variable TOUCHSTREAM_KAFKA_BROKER/,
    );
    expect(() => loadConfig({ TOUCHSTREAM_KAFKA_BROKER: 'x:1' })).toThrowError(ConfigError);
  });

  it('knows every TOUCHSTREAM_ variable the docs tell users to set', async () => {
    // A variable the docs name but the config refuses stops whoever follows the docs.
    const root = new URL('../../../', import.meta.url);
    const docs = ['README.md', ...(await readdir(new URL('docs/', root))).map((f) => `docs/${f}`)];
    const named = new Set<string>();
    for (const doc of docs.filter((d) => d.endsWith('.md'))) {
      const text = await readFile(new URL(doc, root), 'utf8');
      for (const [name] of text.matchAll(/TOUCHSTREAM_[A-Z_]*[A-Z]/g)) named.add(name);
    }
    // Named on purpose without being variables: the table's one row for the ClickHouse
    // credentials (`_USER` / `_PASSWORD` / ...), the misspelling the docs warn about, and
    // the variables listed as not yet available.
    for (const name of [
      'TOUCHSTREAM_CLICKHOUSE',
      'TOUCHSTREAM_KAFKA_BROKER',
      'TOUCHSTREAM_ADMIN_KEYS',
      'TOUCHSTREAM_RETENTION',
    ]) {
      named.delete(name);
    }
    expect(named.size).toBeGreaterThan(10);
    expect([...named].filter((name) => !CONFIG_VARIABLES.includes(name))).toEqual([]);
  });
});
