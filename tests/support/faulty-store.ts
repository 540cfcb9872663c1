import { ClickHouseError } from '@clickhouse/client';
import type { Store } from '@touchstream/store';

type Insert = Store['insert'];

/** The real client with its `insert` wrapped; everything else goes straight through. */
function withInsert(store: Store, wrap: (insert: Insert) => Insert): Store {
  const insert = wrap(store.insert.bind(store));
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'insert') return insert;
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/**
 * The real client, except that inserts fail the way an overloaded server fails them
 * while `failing()` says so.
 */
export function faultyStore(store: Store, failing: () => boolean) {
  let refused = 0;
  const wrapper = withInsert(store, (insert) => async (...args) => {
    if (failing()) {
      refused += 1;
      throw new ClickHouseError({
        message: 'Too many parts (injected)',
        code: '252',
        type: 'TOO_MANY_PARTS',
      });
    }
    return insert(...args);
  });
  return { store: wrapper, refused: () => refused };
}

/**
 * The real client, except that an insert holding a row `poisoned` picks is refused whole,
 * the way ClickHouse refuses a row it cannot parse (its error type and code).
 */
export function poisonedStore(store: Store, poisoned: (row: Record<string, unknown>) => boolean) {
  return withInsert(store, (insert) => async (...args) => {
    const values = args[0].values;
    if (Array.isArray(values) && values.some((row) => poisoned(row))) {
      throw new ClickHouseError({
        message: 'Cannot parse escape sequence (injected)',
        code: '25',
        type: 'CANNOT_PARSE_ESCAPE_SEQUENCE',
      });
    }
    return insert(...args);
  });
}
