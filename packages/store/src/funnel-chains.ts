import { toClickHouseTime } from './events.js';
import {
  breakdownSql,
  filterSql,
  Params,
  STEP_BITS,
  stepMaskSql,
  stepSql,
} from './funnel-conditions.js';
import { DEFAULT_FUNNEL_LIMITS, type FunnelLimits, funnelSettings } from './funnel-limits.js';
import { histogramBounds, timeToConvertColumns } from './funnel-time-to-convert.js';
import type { FunnelSpec } from './funnels.js';
import { NO_PROPERTY_COLUMNS, type PropertyColumns, propertyColumn } from './property-columns.js';

/**
 * A funnel with options (API.md "Funnel options"), as one ClickHouse query that follows
 * every entry's chain.
 *
 * The plain funnel keeps one "best entry" per event because a later entry always does at
 * least as well; with exclusions it does not (a later chain may meet an excluded event),
 * nor with hold-constant (another entry carries another product), nor in any order (a later
 * entry sees other events). So every entry is followed on its own, in linear time:
 *
 * 1. Per customer, the events sorted by time (with hold-constant: by the held values, then
 *    time, so that a run of events carries one set of values), and for each step k an array
 *    `nx_k`: for each event, the first event of its run doing step k strictly later. Each
 *    is a few whole-array passes (a mark, a reverse fill, a shift, a reverse fill over the
 *    events of one millisecond); none depends on the number of entries.
 * 2. Arrays over the customer's entries. A chain is one lookup per step: step k is
 *    `nx_k[the chain's previous step]`, kept when within the window. An exclusion is one
 *    lookup too (the first excluded event after the chain's step a, before its step b), or,
 *    with hold-constant, where excluded events may carry any values, one `arrayExists`.
 *    Arrays over entries beat a row per entry (ARRAY JOIN, then GROUP BY) by about 2x.
 * 3. One entry per customer: the non-void one that reached the deepest step, whose deepest
 *    step came first, then the latest (see `rank`). The customers are then aggregated as
 *    in the plain funnel.
 *
 * A lambda copies each array it captures once per element, so lookups capture as few
 * arrays as they can (a code holds an event's time and index). Each step of a chain is a
 * subquery of its own, as in the plain funnel (aliases in one SELECT are expanded into
 * each other).
 */
/** Bits below the time in an event's packed number: the step mask, then the exclusions. */
const EXCLUSION_BITS = 10;
const MASK_BITS = STEP_BITS + EXCLUSION_BITS;
/** Bits of an event's index in a code (time above it): 16 million events per customer. */
const INDEX_BITS = 24;

export function funnelChainsSql(
  spec: FunnelSpec,
  limits: FunnelLimits = DEFAULT_FUNNEL_LIMITS,
  stored: PropertyColumns = NO_PROPERTY_COLUMNS,
) {
  const params = new Params();
  const K = spec.steps.length;
  const any = spec.order === 'any';
  const exclusions = spec.exclusions ?? [];
  const holds = spec.holdConstant ?? [];
  const attribution = spec.attribution ?? { by: 'first_touch' };
  const required = spec.steps.flatMap((s, k) => (s.optional ? [] : [k]));
  /** The required step at or before step k (step 0 is always required). */
  const requiredBefore = (k: number) => Math.max(...required.filter((r) => r <= k));

  // Times are milliseconds after an origin one window and one millisecond before `from`,
  // so that 0 means "no step", as in the plain funnel.
  const origin = spec.from - spec.windowMs - 1;
  const time = spec.to + spec.windowMs - origin < 2 ** 32 - 1 ? 'UInt32' : 'UInt64';
  const originMs = params.bind('Int64', origin);
  const fromRel = params.bind(time, spec.from - origin);
  const toRel = params.bind(time, spec.to - origin);
  const windowMs = params.bind(time, spec.windowMs);
  const from = params.bind("DateTime64(3, 'UTC')", toClickHouseTime(spec.from));
  const until = params.bind("DateTime64(3, 'UTC')", toClickHouseTime(spec.to + spec.windowMs));
  const types = params.bind('Array(String)', [
    ...new Set([...spec.steps, ...exclusions.map((x) => x.matcher)].map((s) => s.event_type)),
  ]);
  const { sql: mask } = stepMaskSql(params, spec.steps);
  const excluded =
    exclusions.length === 0
      ? 'toUInt16(0)'
      : `toUInt16(${exclusions.map((x, i) => `if(${stepSql(params, x.matcher)}, ${2 ** i}, 0)`).join(' + ')})`;
  // A held property as its JSON text (a missing property is '', null is 'null'): equal
  // text, equal value. The texts of all held properties are hashed into one number. A
  // property column holds the text already; else simpleJSONExtractRaw reads about twice as
  // fast as JSONExtractRaw, and is exact on the flat objects events are stored as, for names
  // JSON writes without escapes.
  const held = holds.map((name) =>
    stored.has(name)
      ? propertyColumn(name)
      : `${JSON.stringify(name) === `"${name}"` ? 'simpleJSONExtractRaw' : 'JSONExtractRaw'}(properties, ${params.bind('String', name)})`,
  );
  // A channel travels as its rank among the channels of the events in the range (listed
  // first, by a scalar subquery reading one low-cardinality column): a number, which the
  // per-customer arrays below collect several times faster than a string (measured). Ranks
  // sort as the names do.
  const channelRanks = spec.breakdown?.by === 'channel';
  const value = !spec.breakdown
    ? `''`
    : channelRanks
      ? 'transform(channel, channel_names, arrayEnumerate(channel_names), toUInt32(0))'
      : breakdownSql(params, spec.breakdown, stored);
  const nameOf = (x: string) => (channelRanks ? `channel_names[${x}]` : x);
  const filters = spec.filters.map((f) => filterSql(params, f));

  // Time, steps and exclusions are packed in one number, which sorts several times faster
  // than a tuple: "strictly after time T" is `e >= bound(T + 1)`, a step is a bit.
  const packedType = time === 'UInt32' ? 'UInt64' : 'UInt128';
  const packedBits = packedType === 'UInt64' ? 64 : 128;
  const sortType = packedType === 'UInt64' ? 'UInt128' : 'UInt256';
  const bound = (t: string) => `bitShiftLeft(to${packedType}(${t}), ${MASK_BITS})`;
  const timeOf = (e: string) => `to${time}(bitShiftRight(${e}, ${MASK_BITS}))`;
  const stepBit = (k: number) => EXCLUSION_BITS + k;
  const codeType = time === 'UInt32' ? 'UInt64' : 'UInt128';
  const timeOfCode = (c: string) => `to${time}(bitShiftRight(${c}, ${INDEX_BITS}))`;
  const indexOfCode = (c: string) => `toUInt32(bitAnd(${c}, ${2 ** INDEX_BITS - 1}))`;
  const isEntry = (e: string) =>
    `bitTest(${e}, ${stepBit(0)}) AND ${e} >= ${bound(fromRel)} AND ${e} < ${bound(toRel)}`;
  const packed = `${bound(`toUnixTimestamp64Milli(timestamp) - ${originMs}`)} + bitShiftLeft(to${packedType}(mask), ${EXCLUSION_BITS}) + xmask`;
  // One number sorts: the held values' hash above the packed event. Within a millisecond
  // the order is of no meaning (each choice below says how it breaks a tie there). A
  // breakdown's values stay unsorted beside the unsorted keys: a value is looked up by time
  // and step, among the events of one millisecond (the smallest wins). With hold-constant,
  // entries of one millisecond can follow different chains: the values and event ids are
  // then sorted by the same number (the same permutation for each), and the ids break ties
  // between those chains.
  const byId = spec.breakdown !== undefined && holds.length > 0;
  const sortKey =
    holds.length === 0 ? 'packed' : `bitShiftLeft(to${sortType}(held), ${packedBits}) + packed`;
  const sorted = (column: string) => `arraySort((c, k) -> k, groupArray(${column}), keys)`;
  const lowBits = params.bind(sortType, (2n ** BigInt(packedBits) - 1n).toString());
  const eventArrays =
    holds.length === 0
      ? ['arraySort(keys) AS ev']
      : [
          'arraySort(keys) AS sk',
          `arrayMap(k -> to${packedType}(bitAnd(k, ${lowBits})), sk) AS ev`,
          `arrayMap(k -> toUInt64(bitShiftRight(k, ${packedBits})), sk) AS hk`,
        ];
  const side = byId
    ? [`${sorted('value')} AS v`, `${sorted('event_id')} AS ids`]
    : spec.breakdown
      ? ['groupArray(value) AS vals']
      : [];
  // The events of one run (one set of held values): the whole array without hold-constant.
  const runEnds =
    holds.length === 0 ? [] : ['arrayMap((a, b) -> a != b, hk, arrayShiftLeft(hk, 1)) AS run_end'];
  /**
   * For each event, the first event of its run strictly later that has `bit`, as a code:
   * its time above its index (time 0 when there is none). A chain's step then needs one
   * lookup, and no second one for its time: each array a lambda looks up is copied per
   * entry, the larger part of the cost.
   */
  const nextWith = (bit: number) => {
    // 1 (time 0) stops the fill at the end of a run: "none".
    const marks =
      holds.length === 0
        ? `arrayMap((c, e) -> if(bitTest(e, ${bit}), c, 0), codes, ev)`
        : `arrayMap((c, e, r) -> if(bitTest(e, ${bit}), c, if(r, 1, 0)), codes, ev, run_end)`;
    const atOrAfter = `arrayReverseFill(x -> x > 0, ${marks})`;
    const after =
      holds.length === 0
        ? `arrayShiftLeft(${atOrAfter}, 1)`
        : `arrayMap((x, r) -> if(r, 1, x), arrayShiftLeft(${atOrAfter}, 1), run_end)`;
    // Events of one millisecond share the answer of the last of them.
    return `arrayReverseFill((x, l) -> l, ${after}, ms_end)`;
  };
  const nexts = [
    ...spec.steps.slice(1).map((_, i) => `${nextWith(stepBit(i + 1))} AS nx${i + 1}`),
    ...(holds.length === 0 ? exclusions.map((_, j) => `${nextWith(j)} AS nxx${j}`) : []),
  ];
  let query = `
      SELECT customer_id, groupArray(sort_key) AS keys,
             ${[...eventArrays, ...side, ...runEnds].map((c) => `${c}, `).join('')}
             arrayMap(e -> ${timeOf('e')}, ev) AS times,
             arrayMap((t, i) -> bitShiftLeft(to${codeType}(t), ${INDEX_BITS}) + i, times, arrayEnumerate(ev)) AS codes,
             ${holds.length ? 'arrayMap((a, b, r) -> a != b OR r, times, arrayShiftLeft(times, 1), run_end)' : 'arrayMap((a, b) -> a != b, times, arrayShiftLeft(times, 1))'} AS ms_end,
             ${nexts.map((c) => `${c}, `).join('')}
             ${byId ? `arrayFilter((x, e) -> ${isEntry('e')}, ids, ev) AS entry_ids, arrayFilter((x, e) -> ${isEntry('e')}, v, ev) AS entry_v, ` : ''}
             arrayFilter((i, e) -> ${isEntry('e')}, arrayEnumerate(ev), ev) AS entries
      FROM (
        SELECT customer_id, event_id, ${mask} AS mask, ${excluded} AS xmask, ${packed} AS packed,
               ${holds.length ? `cityHash64(${held.join(', ')}) AS held, ` : ''}${sortKey} AS sort_key, ${value} AS value
        FROM events
        WHERE timestamp >= ${from} AND timestamp < ${until} AND type IN ${types}
          ${filters.map((f) => `AND ${f}`).join('\n          ')}
      )
      WHERE mask != 0 OR xmask != 0
      GROUP BY customer_id`;
  const layer = (columns: string) => {
    query = `SELECT *, ${columns} FROM (${query})`;
  };
  /**
   * An array over the customer's entries, element by element over entry arrays of the same
   * length. The customer's event arrays (`nx<k>`) are captured where a lookup needs them:
   * copied once per entry, far cheaper than a row per entry (measured).
   */
  const each = (arrays: string[], body: (...x: string[]) => string) => {
    const names = arrays.map((_, j) => `x${j}`);
    return `arrayMap((${names.join(', ')}) -> ${body(...names)}, ${arrays.join(', ')})`;
  };
  layer(
    `arrayFilter((tm, e) -> ${isEntry('e')}, times, ev) AS T0, arrayMap(t -> t + ${windowMs}, T0) AS until_t, entries AS i0`,
  );
  const T = (k: number) => `T${k}`;
  /**
   * Step k of each entry's chain: the candidate event index, kept when it is in the window
   * and before `before` (a time, exclusive; by default just past the window).
   */
  const step = (
    k: number,
    arrays: string[],
    candidate: (...x: string[]) => string,
    before?: { arrays: string[]; time: (...x: string[]) => string },
  ) => {
    const limit = before ?? { arrays: ['until_t'], time: (u: string) => `${u} + 1` };
    layer(
      `${each([...arrays, ...limit.arrays], (...x) => {
        const c = candidate(...x.slice(0, arrays.length));
        return `if(${timeOfCode(c)} > 0 AND ${timeOfCode(c)} < ${limit.time(...x.slice(arrays.length))}, ${c}, 0)`;
      })} AS c${k}`,
    );
    if (!any)
      layer(
        `arrayMap(c -> ${indexOfCode('c')}, c${k}) AS i${k}, arrayMap(c -> ${timeOfCode('c')}, c${k}) AS T${k}`,
      );
  };

  if (any) {
    // Every step on its own: the first event doing it after the entry, within the window.
    for (let k = 1; k < K; k++) step(k, ['i0'], (e) => `nx${k}[${e}]`);
    // A required step counts when it and every required step before it were done; an
    // optional one when it was done and the required step before it counts.
    for (let k = 1; k < K; k++) {
      const needed = required
        .filter((r) => r > 0 && r <= k)
        .concat(spec.steps[k]?.optional ? [k] : []);
      layer(
        `${each(
          [`c${k}`, ...needed.map((r) => `c${r}`)],
          (c, ...n) => `if(${n.map((x) => `${x} > 0`).join(' AND ')}, ${c}, 0)`,
        )} AS taken${k}`,
      );
      layer(
        `arrayMap(c -> ${indexOfCode('c')}, taken${k}) AS i${k}, arrayMap(c -> ${timeOfCode('c')}, taken${k}) AS T${k}`,
      );
    }
  } else {
    // Required steps first, each after the previous required one: the earliest path.
    for (const k of required.slice(1)) {
      const p = requiredBefore(k - 1);
      step(k, [`i${p}`], (i) => `if(${i} > 0, nx${k}[${i}], 0)`);
    }
    // An optional step is taken when done in its place: after the chain's previous step,
    // strictly before its next required step (or within the window when it stopped there).
    // Indices grow with time along a chain, and a skipped step is 0: the greatest index is
    // the chain's previous step.
    for (let k = 1; k < K; k++) {
      if (!spec.steps[k]?.optional) continue;
      const p = requiredBefore(k);
      const next = required.find((r) => r > k) as number;
      const previous = Array.from({ length: k - p }, (_, j) => `i${p + j}`);
      step(
        k,
        previous,
        (first, ...rest) =>
          `if(${first} > 0, nx${k}[greatest(${[first, ...rest].join(', ')}, 0)], 0)`,
        { arrays: [T(next), 'until_t'], time: (t, u) => `if(${t} > 0, ${t}, ${u} + 1)` },
      );
    }
  }
  const stepIndices = spec.steps.map((_, k) => `i${k}`);

  layer(
    `${each(stepIndices.slice(1), (...i) =>
      i.length === 0
        ? '0'
        : `multiIf(${i
            .map((x, j) => [x, j + 1] as const)
            .reverse()
            .map(([x, k]) => `${x} > 0, ${k}`)
            .join(', ')}, 0)`,
    )} AS depth`,
  );
  layer(
    `${each(['depth', ...stepIndices], (d, ...i) => `multiIf(${i.map((x, k) => `${d} = ${k}, ${x}`).join(', ')}, 0)`)} AS i_deep, ${each(
      ['depth', ...spec.steps.map((_, k) => T(k))],
      (d, ...t) => `multiIf(${t.map((x, k) => `${d} = ${k}, ${x}`).join(', ')}, 0)`,
    )} AS T_deep`,
  );

  if (exclusions.length > 0) {
    // Between the chain's step a and its step b; when b was not done, its next step that
    // was (strict order), else the end of the window, inclusive.
    exclusions.forEach((x, j) => {
      const later = any
        ? [x.beforeStep]
        : Array.from({ length: K - x.beforeStep }, (_, n) => x.beforeStep + n);
      const a = x.afterStep;
      layer(
        `${each(
          [...later.map(T), 'until_t'],
          (...t) =>
            `multiIf(${t
              .slice(0, -1)
              .map((y) => `${y} > 0, ${y}`)
              .join(', ')}, ${t.at(-1)} + 1)`,
        )} AS xend${j}`,
      );
      layer(
        `${
          holds.length === 0
            ? each(
                [`i${a}`, `xend${j}`],
                (i, end) =>
                  `${i} > 0 AND ${timeOfCode(`nxx${j}[${i}]`)} > 0 AND ${timeOfCode(`nxx${j}[${i}]`)} < ${end}`,
              )
            : each(
                [T(a), `xend${j}`],
                (t, end) =>
                  `${t} > 0 AND arrayExists(e -> e >= ${bound(`${t} + 1`)} AND e < ${bound(end)} AND bitTest(e, ${j}), ev)`,
              )
        } AS void${j}`,
      );
    });
    layer(
      `${each(
        exclusions.map((_, j) => `void${j}`),
        (...v) => v.join(' OR '),
      )} AS void`,
    );
  } else {
    layer('arrayMap(i -> 0, i0) AS void');
  }
  // The entries ranked (0: void): deepest, then deepest step first, then the latest entry
  // (43 bits hold any time from 1970 to 2200); then the chain whose steps came first, a
  // skipped step last (entries of one millisecond differ only with held values); with a
  // breakdown too, the greater event id of the entry, since the values reported may differ.
  // A customer whose entries are all void, or who has none (best rank 0), is not in the
  // funnel. Such customers are dropped only once a row holds no more arrays: a filter copies
  // every array of the rows it keeps, and costs more than carrying the few customers left.
  const latest = 2 ** 43 - 1;
  const primary = (v: string, d: string, deep: string, t0: string) =>
    `if(${v}, toUInt128(0), bitShiftLeft(toUInt128(${d} + 1), 90) + bitShiftLeft(toUInt128(${latest} - ${deep}), 45) + ${t0})`;
  if (holds.length === 0) {
    // Entries of one millisecond then have the same chain: one number ranks.
    layer(`${each(['void', 'depth', 'T_deep', 'T0'], primary)} AS rank`);
    layer('arrayMax(rank) > 0 AS counts, indexOf(rank, arrayMax(rank)) AS best');
  } else {
    layer(
      `${each(
        [
          'void',
          'depth',
          'T_deep',
          ...stepIndices.map((_, k) => T(k)),
          ...(byId ? ['entry_ids'] : []),
          'arrayEnumerate(i0)',
        ],
        (v, d, i, t0, ...rest) => {
          const later = rest.slice(0, K - 1);
          const tail = rest.slice(K - 1);
          return `(${primary(v, d, i, t0)}, ${later
            .map((t) => `if(${t} > 0, ${latest} - ${t}, 0), `)
            .join('')}${tail.join(', ')})`;
        },
      )} AS rank`,
    );
    layer(
      `tupleElement(arrayMax(rank), 1) > 0 AS counts, tupleElement(arrayMax(rank), ${K + (byId ? 2 : 1)}) AS best`,
    );
  }

  // The value the customer's group is named by: at its first non-void entry, at the deepest
  // step, or at step k (null when not reached). Of the events of that millisecond (and run)
  // that could be the step, the smallest value: the chain's times do not depend on which of
  // them it is, so the value does not either. The times (and held values) are taken from the
  // best entry first: a lambda copies each array it captures once per element.
  // With hold-constant, first touch is the smallest value of the first non-void entries
  // (their chains may differ); otherwise the step, its time and the event it points at.
  const firstHeld = attribution.by === 'first_touch' && holds.length > 0;
  const at =
    attribution.by === 'last_touch'
      ? { step: 'depth[best]', time: 'T_deep[best]', index: 'i_deep[best]' }
      : attribution.by === 'step'
        ? {
            step: String(attribution.step),
            time: `T${attribution.step}[best]`,
            index: `i${attribution.step}[best]`,
          }
        : { step: '0', time: 'arrayMin(arrayFilter((t, vd) -> NOT vd, T0, void))', index: '' };
  const chosen = !spec.breakdown
    ? []
    : firstHeld
      ? [
          `tupleElement(arrayMin(arrayFilter((x, vd) -> NOT vd, ${each(['T0', 'entry_v'], (t, val) => `(${t}, ${val})`)}, void)), 2) AS first_v`,
        ]
      : [
          `${at.step} AS at_step`,
          `${at.time} AS at_t`,
          ...(holds.length ? [`hk[${at.index}] AS at_h`] : []),
        ];
  // Named apart from the entry arrays they come from, then renamed in a query of their own.
  layer(
    [
      ...chosen,
      'depth[best] AS best_depth',
      ...spec.steps.map((_, k) => `T${k}[best] AS best_t${k}`),
    ].join(', '),
  );
  const valueAt =
    holds.length === 0
      ? `arrayMin(arrayFilter((val, e) -> ${timeOf('e')} = at_t AND bitTest(e, ${EXCLUSION_BITS} + at_step), vals, keys))`
      : `arrayMin(arrayFilter((val, t, e, h) -> t = at_t AND bitTest(e, ${EXCLUSION_BITS} + at_step) AND h = at_h, v, times, ev, hk))`;
  const attributed = !spec.breakdown
    ? "''"
    : firstHeld
      ? nameOf('first_v')
      : attribution.by === 'step'
        ? `if(at_t > 0, toNullable(${nameOf(valueAt)}), NULL)`
        : nameOf(valueAt);
  layer(`${attributed} AS breakdown_value`);
  query = `
    SELECT breakdown_value, best_depth AS depth,
           ${spec.steps.map((_, k) => `best_t${k} AS T${k}`).join(', ')}
    FROM (${query})
    WHERE counts`;

  const bounds = histogramBounds(spec.windowMs);
  // From the chain's previous step (the latest earlier time: skipped steps are 0), or from
  // the entry in any order.
  const seconds = (k: number) =>
    any || k === 1
      ? `((toInt64(${T(k)}) - T0) / 1000)`
      : `((toInt64(${T(k)}) - greatest(${Array.from({ length: k }, (_, j) => T(j)).join(', ')})) / 1000)`;
  const counted = (k: number) => (spec.steps[k]?.optional ? `${T(k)} > 0` : `depth >= ${k}`);
  const columns = [
    ...spec.steps.map((_, k) => `countIf(${k === 0 ? '1' : counted(k)}) AS c${k}`),
    ...spec.steps
      .slice(1)
      .flatMap((_, i) => timeToConvertColumns(i + 1, seconds(i + 1), counted(i + 1), bounds)),
  ];
  const grouped = spec.breakdown
    ? `SELECT grouping(breakdown_value) AS is_total, breakdown_value, ${columns.join(', ')}
       FROM (${query})
       GROUP BY GROUPING SETS ((), (breakdown_value))
       ORDER BY is_total DESC, c0 DESC, breakdown_value
       LIMIT ${limits.maxBreakdownValues + 1}`
    : `SELECT 1 AS is_total, '' AS breakdown_value, ${columns.join(', ')} FROM (${query})`;
  const names = channelRanks
    ? `WITH (SELECT arraySort(groupArray(toString(c))) FROM (
              SELECT DISTINCT channel AS c FROM events WHERE timestamp >= ${from} AND timestamp < ${until}
            )) AS channel_names\n`
    : '';
  return {
    query: `${names}${grouped}\nSETTINGS ${funnelSettings(limits).join(', ')}`,
    params: params.values,
  };
}
