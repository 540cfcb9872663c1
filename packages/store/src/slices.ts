/** Customers per query: the list travels in the query's parameters. */
const CUSTOMERS_PER_QUERY = 1_000;

/** Runs `read` on slices of `customers`, so a long list never makes one huge query. */
export async function inSlices<T>(
  customers: readonly string[],
  read: (slice: string[]) => Promise<T[]>,
): Promise<T[]> {
  const results: T[] = [];
  for (let i = 0; i < customers.length; i += CUSTOMERS_PER_QUERY) {
    results.push(...(await read(customers.slice(i, i + CUSTOMERS_PER_QUERY))));
  }
  return results;
}
