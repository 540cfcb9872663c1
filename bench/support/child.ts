/** A benchmark's child processes: this file again under tsx, talking over IPC. */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { onCleanup } from './run.js';

/** A message a benchmark's child process sends its parent: `type` says which. */
export type ChildMessage = { type: string };

export interface Child<From extends ChildMessage> {
  pid: number;
  /** The next message of this type (kept if it came before it was asked for). */
  next<T extends From['type']>(type: T): Promise<Extract<From, { type: T }>>;
  send<M extends ChildMessage>(message: M): void;
  /** Settles when the child exited. */
  exited: Promise<unknown>;
}

/**
 * A benchmark file in a child process of its own, under tsx, told `args`; it is killed at
 * cleanup if it is still running.
 */
export function forkBench<From extends ChildMessage>(
  file: string,
  args: string[],
  options: { execArgv?: string[]; env?: NodeJS.ProcessEnv } = {},
): Child<From> {
  const child = fork(file, args, {
    execArgv: ['--import', 'tsx', ...(options.execArgv ?? [])],
    env: options.env ?? process.env,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = once(child, 'exit');
  onCleanup(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  const inbox: From[] = [];
  const waiting: Array<{ type: string; resolve(m: From): void; reject(e: Error): void }> = [];
  child.on('message', (message: From) => {
    const at = waiting.findIndex((w) => w.type === message.type);
    if (at >= 0) waiting.splice(at, 1)[0]?.resolve(message);
    else inbox.push(message);
  });
  child.once('exit', (code, signal) => {
    for (const w of waiting.splice(0)) {
      w.reject(new Error(`child exited (${code ?? signal}) before sending '${w.type}'`));
    }
  });
  return {
    pid: child.pid ?? 0,
    exited,
    send: (message) => child.send(message),
    next<T extends From['type']>(type: T) {
      type Message = Extract<From, { type: T }>;
      const at = inbox.findIndex((m) => m.type === type);
      if (at >= 0) return Promise.resolve(inbox.splice(at, 1)[0] as Message);
      if (child.exitCode !== null || child.signalCode !== null) {
        return Promise.reject(new Error(`child exited before sending '${type}'`));
      }
      return new Promise<Message>((resolve, reject) => {
        waiting.push({ type, resolve: resolve as (m: From) => void, reject });
      });
    },
  };
}

/** Sends the parent a message and waits until it left, so the child may exit after it. */
export function tellParent<M extends ChildMessage>(message: M): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!process.send) reject(new Error('not a child process'));
    else process.send(message, undefined, {}, (error) => (error ? reject(error) : resolve()));
  });
}
