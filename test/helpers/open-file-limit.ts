import { readFileSync } from 'node:fs';

/** This process's soft limit on open files (storm tests scale down below it); 1024 where /proc is missing. */
export function openFileLimit(): number {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    return soft === undefined || soft === 'unlimited' ? Infinity : Number(soft);
  } catch {
    return 1024; // not Linux: assume the common default
  }
}
