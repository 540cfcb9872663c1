import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Retries an assertion every `intervalMs` until it passes or the time is up; the last
 * failure is thrown.
 */
export async function eventually<T>(
  assertion: () => Promise<T>,
  timeoutMs = 60_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await assertion();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(intervalMs);
    }
  }
}
