/** Running a benchmark: cleanup at exit, temporary folders, waiting, CPU and profiles. */
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

// ------------------------------------------------------------------ cleanup

const cleanups: Array<() => Promise<void>> = [];

/** Registers work to undo at exit, run last-registered first, even on error or signal. */
export function onCleanup(fn: () => Promise<void>) {
  cleanups.push(fn);
}

export async function cleanup() {
  while (cleanups.length > 0) {
    const fn = cleanups.pop();
    try {
      await fn?.();
    } catch (error) {
      console.error('cleanup failed:', error);
    }
  }
}

/** Runs a benchmark's main, then cleans up and exits whatever happened. */
export function runMain(main: () => Promise<void>) {
  let exiting = false;
  const exit = async (code: number) => {
    if (exiting) return;
    exiting = true;
    await cleanup();
    process.exit(code);
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: cleaning up`);
      void exit(130);
    });
  }
  main().then(
    () => exit(0),
    (error) => {
      console.error(error);
      return exit(1);
    },
  );
}

export async function tempDir(prefix: string) {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  onCleanup(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Runs `fn`; with BENCH_CPU_PROF=<dir>, under V8's CPU profiler, written to
 * `<dir>/<name>.cpuprofile` (read it with bench/cpu-profile.ts).
 */
export async function profiled<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const dir = process.env.BENCH_CPU_PROF;
  if (!dir) return fn();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  try {
    return await fn();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    await mkdir(dir, { recursive: true });
    const file = join(dir, `${name}.cpuprofile`);
    await writeFile(file, JSON.stringify(profile));
    session.disconnect();
    console.error(`CPU profile: ${file}`);
  }
}

/** Polls `done` until it holds; past `timeoutMs` the phase is stuck: fail rather than hang. */
export async function waitFor(
  what: string,
  done: () => boolean | Promise<boolean>,
  { everyMs = 20, timeoutMs = 120_000 } = {},
) {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`${what}: not done within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

/** CPU of this process and, if given, another one (the broker) since the call, in cores. */
export function cpuMeter(otherPid?: number) {
  const started = performance.now();
  const cpu = process.cpuUsage();
  const other = otherPid ? processCpuSeconds(otherPid) : 0;
  return () => {
    const seconds = (performance.now() - started) / 1000;
    const used = process.cpuUsage(cpu);
    return {
      cores: (used.user + used.system) / 1e6 / seconds,
      otherCores: otherPid ? (processCpuSeconds(otherPid) - other) / seconds : 0,
    };
  };
}

/** CPU seconds (user + system) a process used so far, from /proc (Linux). */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After "pid (comm) ", utime and stime are the 12th and 13th fields, in clock ticks.
    const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}
