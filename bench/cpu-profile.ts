/**
 * Summarises a V8 `.cpuprofile` (from `BENCH_CPU_PROF=<dir>` or `node --cpu-prof`): self
 * time by package, and self and inclusive time of the top functions.
 *
 *   npx tsx bench/cpu-profile.ts <file.cpuprofile> [top=25]
 */
import { readFileSync } from 'node:fs';
import { fmt, pct, table } from './support/output.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** `fastify`, `@clickhouse/client`, `zod`, `touchstream:collector`, `node:internal`... */
function owner(url: string, functionName: string): string {
  // Code compiled at run time (zod's JIT validators, fast-json-stringify) has no url.
  if (!url) return functionName.startsWith('(') ? functionName : '(native or eval)';
  const modules = url.lastIndexOf('node_modules/');
  if (modules >= 0) {
    const parts = url.slice(modules + 'node_modules/'.length).split('/');
    return parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] ?? url);
  }
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  const local = url.match(/\/(packages|services|apps|bench)\/([^/]+)/);
  if (local) return `touchstream:${local[1] === 'bench' ? 'bench' : local[2]}`;
  return url;
}

function main() {
  const [file, topArg] = process.argv.slice(2);
  if (!file) throw new Error('usage: cpu-profile.ts <file.cpuprofile> [top]');
  const top = Number(topArg ?? 25);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfMicros = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    selfMicros.set(id, (selfMicros.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const total = [...selfMicros.values()].reduce((a, b) => a + b, 0);
  const idle = [...selfMicros].reduce(
    (sum, [id, us]) => (byId.get(id)?.callFrame.functionName === '(idle)' ? sum + us : sum),
    0,
  );

  const label = (n: ProfileNode) => {
    const { functionName, url, lineNumber } = n.callFrame;
    return `${functionName || '(anonymous)'} ${owner(url, functionName)}${url ? `:${lineNumber + 1}` : ''}`;
  };
  const byOwner = new Map<string, number>();
  const byFunction = new Map<string, number>();
  for (const [id, us] of selfMicros) {
    const node = byId.get(id) as ProfileNode;
    const { functionName, url } = node.callFrame;
    if (functionName === '(idle)') continue;
    const who = owner(url, functionName);
    byOwner.set(who, (byOwner.get(who) ?? 0) + us);
    const name = label(node);
    byFunction.set(name, (byFunction.get(name) ?? 0) + us);
  }
  // Inclusive time: a sample counts once for every distinct function on its stack.
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inclusive = new Map<string, number>();
  for (const [id, us] of selfMicros) {
    if (byId.get(id)?.callFrame.functionName === '(idle)') continue;
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const name = label(byId.get(at) as ProfileNode);
      if (seen.has(name)) continue;
      seen.add(name);
      inclusive.set(name, (inclusive.get(name) ?? 0) + us);
    }
  }
  const busy = total - idle;
  const rows = (map: Map<string, number>) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => [name, fmt(us / 1000), pct(us / busy)]);
  console.log(`${file}: ${fmt(total / 1000)} ms sampled, ${pct(idle / total)} idle\n`);
  console.log(table(['self time by package', 'ms', 'of busy'], rows(byOwner)));
  console.log();
  console.log(table(['self time by function', 'ms', 'of busy'], rows(byFunction)));
  console.log();
  console.log(table(['inclusive time by function', 'ms', 'of busy'], rows(inclusive)));
}

main();
