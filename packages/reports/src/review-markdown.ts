import type { FeedbackSummary, Review, ReviewPeriod } from '@touchstream/contracts';

const DASH = '—';

/** `2026-12-05 16:00 UTC`: minutes say enough for periods of hours and days alike. */
const when = (iso: string) => `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;

const range = (p: ReviewPeriod) => `${when(p.from)} – ${when(p.to)}`;

/** A fraction as a percentage with one decimal: 0.4567 → `45.7%`. */
export const percent = (fraction: number | null) =>
  fraction === null ? DASH : `${(fraction * 100).toFixed(1)}%`;

/** A change of conversion in percentage points, signed: 0.05 → `+5.0 pts`. */
export const points = (change: number | null) => {
  if (change === null) return DASH;
  const text = Math.abs(change * 100).toFixed(1);
  return `${change < 0 && text !== '0.0' ? '−' : '+'}${text} pts`;
};

const amount = (value: number) =>
  Math.abs(value).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

/** Money with two decimals and the currency: `1,234.50 EUR`. */
export const money = (value: number | null, currency: string | null) =>
  value === null
    ? DASH
    : `${value < 0 ? '−' : ''}${amount(value)}${currency ? ` ${currency}` : ''}`;

const signedMoney = (value: number, currency: string | null) =>
  `${value < 0 ? '−' : '+'}${amount(value)}${currency ? ` ${currency}` : ''}`;

/** Text in a table cell: a pipe or a line break would end the cell or the row. */
const cell = (text: string) => text.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|');

const rating = (f: FeedbackSummary) =>
  f.mean_score === null ? DASH : `${f.mean_score.toFixed(2)} (n=${f.responses})`;

function headline(review: Review): string[] {
  const { current, previous, currency, period } = review;
  if (current.value_dropped === null) {
    return [
      `Entered: **${current.entered}** (previous ${period}: ${previous.entered}); completed: **${current.completed}** (previous: ${previous.completed}). The journey has no value property, so no value is counted.`,
    ];
  }
  const before = previous.value_dropped ?? 0;
  const diff = Math.round((current.value_dropped - before) * 100) / 100;
  const relative =
    before > 0 ? `, ${diff < 0 ? '−' : '+'}${Math.abs((diff / before) * 100).toFixed(1)}%` : '';
  return [
    `**Value lost at points of disconnection: ${money(current.value_dropped, currency)}** (previous ${period}: ${money(before, currency)}; ${signedMoney(diff, currency)}${relative}).`,
    '',
    `Value completed: ${money(current.value_completed, currency)} (previous: ${money(previous.value_completed, currency)}). Entered: ${current.entered} (previous: ${previous.entered}); completed: ${current.completed} (previous: ${previous.completed}).`,
  ];
}

function transitionRows(review: Review): string[] {
  const rows = review.transitions.map((t) => {
    const c = t.current;
    const conversion = `${percent(c.conversion)}${c.below_target ? ' **⚠ below target**' : ''}`;
    const change =
      t.change === null ? DASH : `${points(t.change)} (from ${percent(t.previous.conversion)})`;
    const reason = c.top_reasons[0];
    return [
      `${cell(t.from_step)} → ${cell(t.to_step)}`,
      t.owner === null ? DASH : cell(t.owner),
      conversion,
      percent(t.target_conversion),
      change,
      money(c.value_dropped, review.currency),
      reason ? `${cell(reason.reason)} (${reason.dropped})` : DASH,
      `${rating(c.feedback.dropped)} / ${rating(c.feedback.continued)}`,
    ];
  });
  return [
    '| Step | Owner | Conversion | Target | Change | Value dropped | Top reason (dropped) | Feedback score: droppers / continuers |',
    '|---|---|---:|---:|---:|---:|---|---|',
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ];
}

function belowTarget(review: Review): string[] {
  const below = review.transitions.filter((t) => t.current.below_target);
  if (below.length === 0) return [];
  return [
    '',
    `**⚠ Below target (${below.length}):**`,
    '',
    ...below.map(
      (t) =>
        `- ${cell(t.from_step)} → ${cell(t.to_step)}: ${percent(t.current.conversion)} against a target of ${percent(t.target_conversion)}${t.owner ? ` (owner: ${t.owner})` : ''}`,
    ),
  ];
}

function alerts(review: Review): string[] {
  if (review.alerts.length === 0) return ['No alerts fired in the period.'];
  return review.alerts.map((a) => {
    const state =
      a.state === 'firing'
        ? '**firing**'
        : `resolved${a.resolved_at ? ` ${when(a.resolved_at)}` : ''}`;
    return `- ${when(a.started_at)}: \`${a.rule_id}\` (${a.condition}) at step ${a.step}, ${state}: ${a.message.replace(/\r?\n/g, ' ')}`;
  });
}

/** The review for people: headline, one row per transition, the alerts fired. */
export function reviewMarkdown(review: Review): string {
  return [
    `# Journey review: ${review.name}, ${review.current.from.slice(0, 10)} to ${review.current.to.slice(0, 10)}`,
    '',
    `Journey \`${review.journey}\`, the last ${review.period}: ${range(review.current)}, against the ${review.period} before: ${range(review.previous)}.`,
    '',
    ...headline(review),
    '',
    '## Steps',
    '',
    ...transitionRows(review),
    ...belowTarget(review),
    '',
    `## Alerts fired (${review.alerts.length})`,
    '',
    ...alerts(review),
    '',
  ].join('\n');
}
