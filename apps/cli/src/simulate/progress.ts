import type { ClientStats } from '@touchstream/sdk';

export interface ProgressOutput {
  write(text: string): unknown;
  /** A terminal gets one line rewritten in place; anything else gets a line per report. */
  isTTY?: boolean;
}

export interface ProgressFigures {
  elapsedMs: number;
  stats: ClientStats;
  /** Events accepted per second since the previous report. */
  rate: number;
  note?: string;
}

/** Sums the producers' counts. */
export function totalStats(all: readonly ClientStats[]): ClientStats {
  const total: ClientStats = {
    tracked: 0,
    refused: 0,
    sent: 0,
    accepted: 0,
    retried: 0,
    rejected: 0,
    failed: 0,
    pending: 0,
    requests: 0,
  };
  for (const s of all) {
    for (const key of Object.keys(total) as (keyof ClientStats)[]) total[key] += s[key];
  }
  return total;
}

export function progressLine({ elapsedMs, stats, rate, note }: ProgressFigures): string {
  const parts = [
    `${(elapsedMs / 1000).toFixed(1)}s`,
    `sent ${stats.sent}`,
    `accepted ${stats.accepted}`,
    `retried ${stats.retried}`,
    `rejected ${stats.rejected}`,
  ];
  if (stats.refused > 0) parts.push(`dropped ${stats.refused}`);
  if (stats.failed > 0) parts.push(`failed ${stats.failed}`);
  parts.push(`rate ${rate.toFixed(1)}/s`);
  return `${parts.join('  ')}${note ? `  [${note}]` : ''}`;
}

/** Writes progress lines: in place on a terminal, one per report otherwise. */
export function createProgressWriter(output: ProgressOutput) {
  let inPlace = false;
  return {
    update(line: string) {
      if (output.isTTY) {
        output.write(`\r\x1b[2K${line}`);
        inPlace = true;
      } else {
        output.write(`${line}\n`);
      }
    },
    /** A line that stays, printed above the one rewritten in place. */
    log(line: string) {
      output.write(inPlace ? `\r\x1b[2K${line}\n` : `${line}\n`);
      inPlace = false;
    },
    end() {
      if (inPlace) output.write('\n');
      inPlace = false;
    },
  };
}
