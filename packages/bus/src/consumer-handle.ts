import type { Consumer } from './bus.js';
import type { StallWatch } from './stall-watch.js';

/**
 * A consumer's handle, held in `consumers` until it has stopped. However often `stop` is
 * called, `shutdown` runs once and every call waits for that one run.
 */
export function consumerHandle(
  consumers: Set<Consumer>,
  watch: StallWatch,
  shutdown: () => Promise<void>,
): Consumer {
  let stopping: Promise<void> | undefined;
  const handle: Consumer = {
    stop: () => {
      stopping ??= (async () => {
        await shutdown();
        consumers.delete(handle);
      })();
      return stopping;
    },
    stalls: () => watch.stalls(),
  };
  consumers.add(handle);
  return handle;
}
