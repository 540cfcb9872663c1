import { ClickHouseError } from '@clickhouse/client';
import type { Store } from '@touchstream/store';

/**
 * The real client, except that inserts fail the way an overloaded server fails them
 * while `failing()` says so. Everything else goes straight through.
 */
export function faultyStore(store: Store, failing: () => boolean) {
  let refused = 0;
  const wrapper = new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'insert') {
        return async (...args: Parameters<Store['insert']>) => {
          if (failing()) {
            refused += 1;
            throw new ClickHouseError({
              message: 'Too many parts (injected)',
              code: '252',
              type: 'TOO_MANY_PARTS',
            });
          }
          return target.insert(...args);
        };
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store: wrapper, refused: () => refused };
}
