const MINUTE = 60_000;

export interface TimeRange {
  from: number;
  to: number;
}

/** The range ending at the next whole minute, as the inputs show minutes only. */
export function lastPeriod(lengthMs: number, now = Date.now()): TimeRange {
  const to = Math.ceil(now / MINUTE) * MINUTE;
  return { from: to - lengthMs, to };
}

/** `<input type="datetime-local">` speaks local wall-clock time without a zone. */
export function toLocalInput(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A datetime-local value as epoch ms (the string has no zone, so it is local time). */
export function fromLocalInput(value: string): number | undefined {
  const ms = new Date(value).getTime();
  return Number.isNaN(ms) ? undefined : ms;
}

/** `count` consecutive slices covering the range exactly, the last one taking the rest. */
export function slices(range: TimeRange, count: number): TimeRange[] {
  const size = Math.max(MINUTE, Math.floor((range.to - range.from) / count / MINUTE) * MINUTE);
  const result: TimeRange[] = [];
  for (let from = range.from; from < range.to && result.length < count; from += size) {
    result.push({
      from,
      to: result.length === count - 1 ? range.to : Math.min(from + size, range.to),
    });
  }
  return result;
}
