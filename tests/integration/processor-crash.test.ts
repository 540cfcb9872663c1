import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createKafkaBus } from '@touchstream/bus';
import { loadConfig } from '@touchstream/config';
import { encodeTouchpoint, topicNames } from '@touchstream/contracts';
import { createStore } from '@touchstream/store';
import { describe, expect, it } from 'vitest';
import { asTouchpoint, makeEvent } from '../support/events.js';
import { kafkaBrokers, uniqueName } from '../support/kafka.js';
import { spawnTouchstream } from '../support/runtime.js';
import { eventually } from '../support/wait.js';

describe('a processor killed mid-stream', () => {
  it('loses nothing and counts nothing twice after it starts again', async () => {
    const prefix = `${uniqueName('crash')}.`;
    const topics = topicNames(prefix);
    const dataDir = await mkdtemp(join(tmpdir(), 'touchstream-crash-'));
    const env = {
      TOUCHSTREAM_KAFKA_BROKERS: kafkaBrokers().join(','),
      TOUCHSTREAM_TOPIC_PREFIX: prefix,
      TOUCHSTREAM_DATA_DIR: dataDir,
    };
    const bus = createKafkaBus({ brokers: kafkaBrokers() });
    const sent: string[] = [];
    const publishSome = async (batches: number) => {
      for (let i = 0; i < batches; i++) {
        const events = Array.from({ length: 100 }, () => asTouchpoint(makeEvent()));
        await bus.publish(topics.touchpoints, events.map(encodeTouchpoint));
        sent.push(...events.map((e) => e.event_id));
        await sleep(20);
      }
    };

    let processor = await spawnTouchstream(['start', '--only', 'processor'], env);
    await publishSome(20);
    // Killed without warning while records are still flowing: no drain, no final commit.
    const stillFlowing = publishSome(10);
    await sleep(150);
    await processor.kill('SIGKILL');
    await stillFlowing;
    await publishSome(5);

    processor = await spawnTouchstream(['start', '--only', 'processor'], env);
    await publishSome(15);
    await eventually(
      async () => expect(await bus.lag(`${prefix}processor`, topics.touchpoints)).toBe(0),
      90_000,
    );
    await processor.kill('SIGTERM');
    await bus.close();

    // The processor is gone: this process may open its data directory now.
    const config = loadConfig({ TOUCHSTREAM_DATA_DIR: dataDir });
    const store = await createStore(config);
    const [row] = await (
      await store.query({
        query: 'SELECT count() AS n, uniqExact(event_id) AS ids FROM events FINAL',
        format: 'JSONEachRow',
      })
    ).json<{ n: string; ids: string }>();
    const stored = await (
      await store.query({ query: 'SELECT DISTINCT event_id FROM events', format: 'JSONEachRow' })
    ).json<{ event_id: string }>();
    await store.close();

    expect(sent).toHaveLength(5000);
    expect({ n: Number(row?.n), ids: Number(row?.ids) }).toEqual({ n: 5000, ids: 5000 });
    expect(new Set(stored.map((r) => r.event_id))).toEqual(new Set(sent));
  });
});
