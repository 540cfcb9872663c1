import type { DropoffResponse, FunnelResponse } from '@touchstream/contracts';
import { BarChart, FunnelChart, LineChart, SankeyChart } from 'echarts/charts';
import { GridComponent, LegendComponent, TooltipComponent } from 'echarts/components';
import * as echarts from 'echarts/core';
import { SVGRenderer } from 'echarts/renderers';
import { formatBound, formatCount, formatRate, formatShortTime, ratio } from './format.js';
import type { TimeRange } from './time-range.js';

// Only the charts the page draws: a fraction of the full ECharts bundle.
echarts.use([
  BarChart,
  FunnelChart,
  LineChart,
  SankeyChart,
  GridComponent,
  LegendComponent,
  TooltipComponent,
  SVGRenderer,
]);

const PALETTE = ['#3b6ea8', '#e07b39', '#4c9a6a', '#b0456a', '#7a63b8', '#c2a23a', '#4aa3b5'];
// The page's own font stack, named in full: ECharts measures text with it, and `inherit`
// would measure one font and draw another, so legends overlap.
const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
const TEXT = { color: '#334155', fontFamily: FONT };
// Users (and screenshots) that ask for less motion get the charts drawn at once.
const animation = !window.matchMedia('(prefers-reduced-motion: reduce)').matches;

/** One colour per channel, the same in every chart of the page. */
export function channelColours(dropoffs: DropoffResponse): Map<string, string> {
  const names = new Set<string>();
  for (const t of dropoffs.transitions) for (const c of t.by_channel) names.add(c.channel);
  return new Map([...names].sort().map((name, i) => [name, PALETTE[i % PALETTE.length] ?? '#888']));
}

export function buildCharts(elements: {
  funnel: HTMLElement;
  time: HTMLElement;
  channel: HTMLElement;
  flow: HTMLElement;
  timeToConvert: HTMLElement;
}) {
  const init = (el: HTMLElement) => echarts.init(el, undefined, { renderer: 'svg' });
  const funnel = init(elements.funnel);
  const time = init(elements.time);
  const channel = init(elements.channel);
  const flow = init(elements.flow);
  const timeToConvert = init(elements.timeToConvert);
  const all = [funnel, time, channel, flow, timeToConvert];
  window.addEventListener('resize', () => {
    for (const chart of all) chart.resize();
  });

  return {
    /** Charts drawn while the page was still hidden take their size once it shows. */
    resize() {
      for (const chart of all) chart.resize();
    },

    funnel(data: FunnelResponse) {
      const first = data.steps[0]?.customers ?? 0;
      funnel.setOption(
        {
          textStyle: TEXT,
          animation,
          color: PALETTE,
          tooltip: { trigger: 'item', formatter: '{b}: {c} customers' },
          series: [
            {
              type: 'funnel',
              // Step order, not size order: a later step can never be wider anyway.
              sort: 'none',
              left: 10,
              // Room for the labels: the last steps are too narrow to hold theirs.
              right: 160,
              top: 10,
              bottom: 10,
              minSize: '4%',
              gap: 3,
              labelLine: { length: 12 },
              label: {
                position: 'right',
                color: TEXT.color,
                formatter: (p: { name: string; value: number }) =>
                  `${p.name}  ${formatCount(p.value)}  (${formatRate(ratio(p.value, first))})`,
              },
              data: data.steps.map((s) => ({ name: s.name, value: s.customers })),
            },
          ],
        },
        true,
      );
    },

    /** Nothing drawn: the panel says why (a refused query) instead. */
    clearFunnel() {
      funnel.clear();
      timeToConvert.clear();
    },

    /** Customers per time-to-convert bucket, each labelled by its upper bound. */
    timeToConvert(histogram: ReadonlyArray<{ le_seconds: number; customers: number }>) {
      timeToConvert.setOption(
        {
          textStyle: TEXT,
          animation,
          tooltip: {
            trigger: 'axis',
            axisPointer: { type: 'shadow' },
            valueFormatter: (v: number) => `${formatCount(v)} customers`,
          },
          grid: { left: 50, right: 10, top: 24, bottom: 30 },
          xAxis: {
            type: 'category',
            data: histogram.map((b) => `≤ ${formatBound(b.le_seconds)}`),
            axisLabel: { hideOverlap: true },
          },
          yAxis: { type: 'value', name: 'customers', minInterval: 1 },
          series: [
            {
              type: 'bar',
              color: PALETTE[0],
              // Counts on the bars: the buckets are read one by one, not estimated.
              label: {
                show: true,
                position: 'top',
                formatter: (p: { value: number }) => (p.value > 0 ? formatCount(p.value) : ''),
              },
              data: histogram.map((b) => b.customers),
            },
          ],
        },
        true,
      );
    },

    time(points: Array<TimeRange & { entered: number; completed: number }>) {
      time.setOption(
        {
          textStyle: TEXT,
          animation,
          tooltip: { trigger: 'axis' },
          legend: { top: 0 },
          grid: { left: 50, right: 50, top: 36, bottom: 30 },
          xAxis: { type: 'category', data: points.map((p) => formatShortTime(p.from)) },
          yAxis: [
            { type: 'value', name: 'instances', minInterval: 1 },
            {
              type: 'value',
              name: 'conversion',
              min: 0,
              max: 1,
              axisLabel: { formatter: (v: number) => formatRate(v) },
              splitLine: { show: false },
            },
          ],
          series: [
            {
              name: 'entered',
              type: 'bar',
              color: '#cbd5e1',
              data: points.map((p) => p.entered),
            },
            {
              name: 'completed',
              type: 'bar',
              color: '#3b6ea8',
              data: points.map((p) => p.completed),
            },
            {
              name: 'conversion',
              type: 'line',
              yAxisIndex: 1,
              color: '#e07b39',
              smooth: true,
              tooltip: { valueFormatter: (v: number | null) => formatRate(v) },
              data: points.map((p) => ratio(p.completed, p.entered)),
            },
          ],
        },
        true,
      );
    },

    channels(data: DropoffResponse, colours: Map<string, string>) {
      const labels = data.transitions.map((t) => `${t.from_step} → ${t.to_step}`);
      channel.setOption(
        {
          textStyle: TEXT,
          animation,
          tooltip: {
            trigger: 'item',
            formatter: (p: { seriesName: string; dataIndex: number }) => {
              const row = data.transitions[p.dataIndex]?.by_channel.find(
                (c) => c.channel === p.seriesName,
              );
              if (!row) return '';
              return `${labels[p.dataIndex]} on ${row.channel}<br>reached ${formatCount(row.reached)}, continued ${formatCount(row.continued)}, dropped ${formatCount(row.dropped)}<br>drop rate ${formatRate(ratio(row.dropped, row.continued + row.dropped))}`;
            },
          },
          legend: { top: 0 },
          grid: { left: 50, right: 10, top: 36, bottom: 40 },
          xAxis: {
            type: 'category',
            data: labels,
            // Every transition named, on two lines, rather than every other one hidden.
            axisLabel: {
              interval: 0,
              lineHeight: 14,
              formatter: (label: string) => label.replace(' → ', ' →\n'),
            },
          },
          yAxis: {
            type: 'value',
            min: 0,
            axisLabel: { formatter: (v: number) => formatRate(v) },
          },
          series: [...colours].map(([name, colour]) => ({
            name,
            type: 'bar',
            color: colour,
            data: data.transitions.map((t) => {
              const row = t.by_channel.find((c) => c.channel === name);
              return row ? ratio(row.dropped, row.continued + row.dropped) : null;
            }),
          })),
        },
        true,
      );
    },

    flow(data: DropoffResponse, colours: Map<string, string>) {
      const { nodes, links } = flowGraph(data);
      flow.setOption(
        {
          textStyle: TEXT,
          animation,
          tooltip: {
            trigger: 'item',
            formatter: (p: { dataType: string; name: string; value: number }) =>
              p.dataType === 'edge'
                ? `${p.name.replace(' > ', ' → ')}: ${formatCount(p.value)}`
                : p.name,
          },
          series: [
            {
              type: 'sankey',
              left: 10,
              right: 140,
              top: 10,
              bottom: 10,
              nodeGap: 10,
              nodeAlign: 'justify',
              emphasis: { focus: 'adjacency' },
              label: { formatter: (p: { name: string }) => p.name },
              data: nodes.map((n) => ({
                name: n.name,
                itemStyle: { color: colours.get(n.channel) ?? '#888' },
              })),
              links: links.map((l) => ({
                ...l,
                // Hand-offs (a change of channel) are what this chart is for: stay on a
                // channel reads as a quiet grey.
                lineStyle: l.handoff
                  ? { color: 'source', opacity: 0.55 }
                  : { color: '#94a3b8', opacity: 0.2 },
              })),
            },
          ],
        },
        true,
      );
    },
  };
}

/**
 * Instances continuing from (step k, channel a) to (step k+1, channel b). The drop-offs
 * answer lists hand-offs (a != b); the rest of a channel's `continued` stayed on it. One
 * node per step and channel keeps the graph acyclic, which a sankey needs.
 */
export function flowGraph(data: DropoffResponse) {
  const nodes = new Map<string, { name: string; channel: string }>();
  const links: Array<{ source: string; target: string; value: number; handoff: boolean }> = [];
  const node = (step: string, channel: string) => {
    const name = `${step} · ${channel}`;
    if (!nodes.has(name)) nodes.set(name, { name, channel });
    return name;
  };
  for (const t of data.transitions) {
    for (const c of t.by_channel) {
      const handedOff = t.handoffs
        .filter((x) => x.from_channel === c.channel)
        .reduce((sum, x) => sum + x.continued, 0);
      const stayed = c.continued - handedOff;
      if (stayed > 0) {
        links.push({
          source: node(t.from_step, c.channel),
          target: node(t.to_step, c.channel),
          value: stayed,
          handoff: false,
        });
      }
    }
    for (const x of t.handoffs) {
      if (x.continued <= 0) continue;
      links.push({
        source: node(t.from_step, x.from_channel),
        target: node(t.to_step, x.to_channel),
        value: x.continued,
        handoff: true,
      });
    }
  }
  return { nodes: [...nodes.values()], links };
}
