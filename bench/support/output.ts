/** What a benchmark prints: numbers, percentages, markdown tables, the machine. */
import { availableParallelism, loadavg } from 'node:os';

/** The machine and its load now: the first line of a benchmark's output. */
export function machine() {
  const load = loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  return `node ${process.version}, ${availableParallelism()} cores, load average ${load}`;
}

export const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

export const pct = (ratio: number) => `${(ratio * 100).toFixed(1)}%`;

/** A markdown table, so results paste into docs/BENCHMARKS.md as they are. */
export function table(header: string[], rows: string[][]) {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** The median, as the API takes it: the mean of the two middle values of an even count. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  if (s.length === 0) return 0;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}
