import type { FunnelExclusion } from '@touchstream/contracts';
import type { FunnelOptions } from './api.js';
import { h } from './dom.js';

/** As many as the API takes (`hold_constant`: 1 to 3 names). */
const HOLD_SLOTS = 3;

export interface FunnelControls {
  /**
   * The options as the API takes them. Defaults are left out, and so are exclusion rows
   * and hold-constant boxes still blank: a row just added is not yet a question.
   */
  options(): FunnelOptions;
  /** The journey's steps, which exclusions name by position; rows keep what still fits. */
  setSteps(names: readonly string[]): void;
  /** Shows these options (from the address), as far as the current steps allow. */
  restore(options: FunnelOptions): void;
}

export interface FunnelControlElements {
  form: HTMLFormElement;
  order: HTMLSelectElement;
  hold: HTMLElement;
  exclusions: HTMLElement;
  addExclusion: HTMLButtonElement;
}

interface ExclusionRow {
  row: HTMLElement;
  type: HTMLInputElement;
  after: HTMLSelectElement;
  before: HTMLSelectElement;
}

/**
 * The funnel options the panel offers: order, exclusions and hold-constant. Every step is
 * offered on both sides of an exclusion, even pairs the API refuses (`after >= before`):
 * the API is the one judge of a query, and its 400 names the field in the panel.
 */
export function buildFunnelControls(
  elements: FunnelControlElements,
  onChange: () => void,
): FunnelControls {
  let steps: readonly string[] = [];
  const rows: ExclusionRow[] = [];

  const holdInputs = Array.from({ length: HOLD_SLOTS }, (_, i) =>
    h('input', {
      type: 'text',
      placeholder: i === 0 ? 'e.g. product_id' : 'property',
      'aria-label': `Hold constant, property ${i + 1}`,
      'data-testid': `funnel-hold-${i}`,
      spellcheck: 'false',
      autocomplete: 'off',
    }),
  );
  elements.hold.replaceChildren(...holdInputs);

  const stepOptions = (select: HTMLSelectElement, chosen: number) => {
    select.replaceChildren(
      ...steps.map((name, k) => h('option', { value: String(k) }, `${k}. ${name}`)),
    );
    select.value = String(Math.min(Math.max(chosen, 0), steps.length - 1));
  };

  function addRow(exclusion?: FunnelExclusion): ExclusionRow {
    const type = h('input', {
      type: 'text',
      placeholder: 'event type, e.g. checkout_error',
      'aria-label': 'Excluded event type',
      'data-testid': 'exclusion-type',
      spellcheck: 'false',
      autocomplete: 'off',
    });
    type.value = exclusion?.event_type ?? '';
    const after = h('select', { 'aria-label': 'After step', 'data-testid': 'exclusion-after' });
    const before = h('select', { 'aria-label': 'Before step', 'data-testid': 'exclusion-before' });
    stepOptions(after, exclusion?.after_step ?? 0);
    stepOptions(before, exclusion?.before_step ?? steps.length - 1);
    const remove = h(
      'button',
      { type: 'button', class: 'quiet', 'data-testid': 'exclusion-remove', title: 'Remove' },
      'Remove',
    );
    const row = h(
      'div',
      { class: 'exclusion', 'data-testid': 'funnel-exclusion' },
      'Leave out customers who did ',
      type,
      ' after ',
      after,
      ' and before ',
      before,
      remove,
    );
    const entry = { row, type, after, before };
    remove.addEventListener('click', () => {
      rows.splice(rows.indexOf(entry), 1);
      row.remove();
      onChange();
    });
    rows.push(entry);
    elements.exclusions.append(row);
    return entry;
  }

  // Typing is not a question yet: the funnel is asked again when a field is committed
  // (`change`: Enter, leaving the box, choosing an option), which every control sends.
  elements.form.addEventListener('change', () => onChange());
  elements.form.addEventListener('submit', (event) => {
    event.preventDefault();
    onChange();
  });
  elements.addExclusion.addEventListener('click', () => addRow().type.focus());

  return {
    options() {
      const options: FunnelOptions = {};
      if (elements.order.value === 'any') options.order = 'any';
      const exclusions = rows
        .filter((r) => r.type.value.trim() !== '')
        .map((r) => ({
          event_type: r.type.value.trim(),
          after_step: Number(r.after.value),
          before_step: Number(r.before.value),
        }));
      if (exclusions.length > 0) options.exclusions = exclusions;
      const hold = holdInputs.map((input) => input.value.trim()).filter((name) => name !== '');
      if (hold.length > 0) options.hold_constant = hold;
      return options;
    },

    setSteps(names) {
      const same = names.length === steps.length && names.every((n, k) => n === steps[k]);
      if (same) return;
      steps = [...names];
      // Positions mean other steps in another journey: rows start again from the widest
      // span, keeping their event types.
      for (const r of rows) {
        stepOptions(r.after, 0);
        stepOptions(r.before, steps.length - 1);
      }
    },

    restore(options) {
      elements.order.value = options.order ?? 'strict';
      for (const r of rows.splice(0)) r.row.remove();
      for (const exclusion of options.exclusions ?? []) addRow(exclusion);
      holdInputs.forEach((input, i) => {
        input.value = options.hold_constant?.[i] ?? '';
      });
    },
  };
}

/**
 * The options in the address: `order=any`, `exclude=<after>-<before>-<event type>` (one
 * each), `hold=<property>` (one each), so a view with its options can be shared.
 */
export function optionsToParams(options: FunnelOptions, params: URLSearchParams) {
  if (options.order) params.set('order', options.order);
  for (const e of options.exclusions ?? []) {
    params.append('exclude', `${e.after_step}-${e.before_step}-${e.event_type}`);
  }
  for (const name of options.hold_constant ?? []) params.append('hold', name);
}

export function optionsFromParams(params: URLSearchParams): FunnelOptions {
  const options: FunnelOptions = {};
  if (params.get('order') === 'any') options.order = 'any';
  const exclusions = params.getAll('exclude').flatMap((text) => {
    const match = /^(\d+)-(\d+)-(.+)$/.exec(text);
    return match
      ? [
          {
            after_step: Number(match[1]),
            before_step: Number(match[2]),
            event_type: match[3] ?? '',
          },
        ]
      : [];
  });
  if (exclusions.length > 0) options.exclusions = exclusions;
  const hold = params.getAll('hold').slice(0, HOLD_SLOTS);
  if (hold.length > 0) options.hold_constant = hold;
  return options;
}
