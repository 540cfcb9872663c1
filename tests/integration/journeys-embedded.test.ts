import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'vitest';
import { postAll } from '../support/events.js';
import { putJourney } from '../support/http.js';
import {
  batchesWithRetries,
  dropoffsAt,
  expectDropoffsToMatch,
  PURCHASE,
  PURCHASE_FILE,
  purchaseTraffic,
} from '../support/journey-traffic.js';
import { spawnTouchstream, startTestRuntime } from '../support/runtime.js';

const HOUR = 3_600_000;
// Short, so that the last instances are decided soon after the traffic stops; long enough
// that no partition sits idle while the test is still sending.
const IDLE = '8s';

describe('journey drop-offs on the embedded defaults', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  it('equal the reference model for generated multi-channel journeys', async () => {
    const runtime = await startTestRuntime({
      TOUCHSTREAM_DATA_DIR: await mkdtemp(join(tmpdir(), 'touchstream-journeys-e2e-')),
      TOUCHSTREAM_IDLE_WATERMARK: IDLE,
    });
    cleanup.push(() => runtime.stop());
    await putJourney(runtime.address, PURCHASE);

    const start = Date.now() - 3 * HOUR;
    const events = purchaseTraffic({ customers: 250, start, seed: 1 });
    await postAll(runtime.address, batchesWithRetries(events, 200));
    await expectDropoffsToMatch(dropoffsAt(runtime.address), PURCHASE, events, start);
  });

  it('are unchanged by a restart of touchstream start mid-stream', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'touchstream-journeys-restart-'));
    const journeysFile = join(dir, 'journeys.json');
    await writeFile(journeysFile, PURCHASE_FILE);
    const env = {
      TOUCHSTREAM_DATA_DIR: join(dir, 'data'),
      TOUCHSTREAM_JOURNEYS_FILE: journeysFile,
      TOUCHSTREAM_IDLE_WATERMARK: IDLE,
    };
    const start = Date.now() - 3 * HOUR;
    const events = purchaseTraffic({ customers: 250, start, seed: 2 });
    const batches = batchesWithRetries(events, 200);
    const half = Math.floor(batches.length / 2);

    const first = await spawnTouchstream(['start'], env);
    cleanup.push(() => first.kill('SIGKILL'));
    await postAll(first.address, batches.slice(0, half));
    // No warning, no drain: whatever was acknowledged must already be safe.
    await first.kill('SIGKILL');

    const second = await spawnTouchstream(['start'], env);
    cleanup.push(() => second.kill('SIGTERM'));
    // The batch before the crash again, as a client unsure of its answer would send it.
    await postAll(second.address, batches.slice(half - 1));
    await expectDropoffsToMatch(dropoffsAt(second.address), PURCHASE, events, start);
  });
});
