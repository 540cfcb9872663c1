import type { FunnelFilter, PropertyValue, StepMatcher } from '@touchstream/contracts';
import { NO_PROPERTY_COLUMNS, type PropertyColumns, propertyColumn } from './property-columns.js';

/** The funnel queries' shared pieces: parameters, step and filter conditions, breakdown values. */

/** Collects query parameters: every value reaches ClickHouse as `{pN:Type}`, never as text. */
export class Params {
  readonly values: Record<string, unknown> = {};
  #next = 0;

  bind(type: string, value: unknown): string {
    const name = `p${this.#next++}`;
    this.values[name] = value;
    return `{${name}:${type}}`;
  }
}

/** Steps are bits of a mask: at most 20 (the contract's limit). */
export const STEP_BITS = 20;

export const NUMERIC_TYPES = `('Int64', 'UInt64', 'Double')`;

/** SQL for "the event's property `name` is exactly `value`": type and value, as the engine matches. */
export function propertyEquals(params: Params, name: string, value: PropertyValue): string {
  const key = params.bind('String', name);
  const type = `JSONType(properties, ${key})`;
  if (value === null) return `(JSONHas(properties, ${key}) AND ${type} = 'Null')`;
  if (typeof value === 'string') {
    return `(${type} = 'String' AND JSONExtractString(properties, ${key}) = ${params.bind('String', value)})`;
  }
  if (typeof value === 'number') {
    return `(${type} IN ${NUMERIC_TYPES} AND JSONExtractFloat(properties, ${key}) = ${params.bind('Float64', value)})`;
  }
  return `(${type} = 'Bool' AND JSONExtractBool(properties, ${key}) = ${params.bind('UInt8', value ? 1 : 0)})`;
}

export function filterSql(params: Params, filter: FunnelFilter): string {
  switch (filter.op) {
    case 'eq':
      return propertyEquals(params, filter.property, filter.value);
    case 'neq':
      // A missing property is "not equal" too, as in the product tools.
      return `NOT ${propertyEquals(params, filter.property, filter.value)}`;
    case 'in':
      return `(${filter.value.map((v) => propertyEquals(params, filter.property, v)).join(' OR ')})`;
    case 'contains': {
      const key = params.bind('String', filter.property);
      return `(JSONType(properties, ${key}) = 'String' AND positionCaseInsensitiveUTF8(JSONExtractString(properties, ${key}), ${params.bind('String', filter.value)}) > 0)`;
    }
    case 'gt':
    case 'lt': {
      const key = params.bind('String', filter.property);
      const op = filter.op === 'gt' ? '>' : '<';
      return `(JSONType(properties, ${key}) IN ${NUMERIC_TYPES} AND JSONExtractFloat(properties, ${key}) ${op} ${params.bind('Float64', filter.value)})`;
    }
  }
}

export function stepSql(params: Params, step: StepMatcher): string {
  const parts = [`type = ${params.bind('String', step.event_type)}`];
  if (step.channel !== undefined) parts.push(`channel = ${params.bind('String', step.channel)}`);
  for (const [name, value] of Object.entries(step.where ?? {})) {
    parts.push(propertyEquals(params, name, value));
  }
  return parts.join(' AND ');
}

/** A breakdown value as text: strings as they are, numbers and booleans as JSON writes them. */
export function breakdownSql(
  params: Params,
  breakdown: FunnelBreakdown,
  columns: PropertyColumns = NO_PROPERTY_COLUMNS,
): string {
  if (breakdown.by === 'channel') return 'toString(channel)';
  // The JSON functions' arguments and the value's JSON text: a property column holds the
  // text already, with no JSON object to parse; else it is read from the properties.
  const stored = columns.has(breakdown.name);
  const key = stored ? '' : params.bind('String', breakdown.name);
  const json = stored ? propertyColumn(breakdown.name) : `properties, ${key}`;
  const raw = stored ? json : `JSONExtractRaw(${json})`;
  return `multiIf(JSONType(${json}) = 'String', JSONExtractString(${json}),
                  JSONType(${json}) IN ${NUMERIC_TYPES} OR JSONType(${json}) = 'Bool', ${raw}, '')`;
}

export type FunnelBreakdown = { by: 'channel' } | { by: 'property'; name: string };

/**
 * Each event's steps as a bit mask. Without channel or property conditions, every event of
 * the step types matches a step, and its type alone gives its steps: one lookup rather than
 * a test per step.
 */
export function stepMaskSql(params: Params, steps: readonly StepMatcher[]) {
  const stepTypes = [...new Set(steps.map((s) => s.event_type))];
  const onlyTypes = steps.every((s) => s.channel === undefined && s.where === undefined);
  const typeMasks = stepTypes.map((type) =>
    steps.reduce((bits, s, k) => (s.event_type === type ? bits + 2 ** k : bits), 0),
  );
  const sql = onlyTypes
    ? `transform(type, ${params.bind('Array(String)', stepTypes)}, ${params.bind('Array(UInt32)', typeMasks)}, toUInt32(0))`
    : `toUInt32(${steps.map((step, k) => `if(${stepSql(params, step)}, ${2 ** k}, 0)`).join(' + ')})`;
  return { sql, onlyTypes };
}
