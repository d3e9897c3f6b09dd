/** A progress bar on stderr for long CLI runs; silent unless stderr is a terminal. */
export interface Progress {
  /** A new phase with `total` steps (0 = unknown: a counter instead of a bar). */
  start(total: number, label: string): void;
  tick(n: number, label?: string): void;
  done(): void;
}

export const NO_PROGRESS: Progress = { start() {}, tick() {}, done() {} };

export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return NO_PROGRESS;
  let total = 0;
  let done = 0;
  let label = '';
  let last = 0;
  const render = (force = false) => {
    const now = Date.now();
    if (!force && now - last < 100) return;
    last = now;
    const width = 30;
    const text =
      total > 0
        ? `[${'#'.repeat(Math.round((Math.min(done, total) / total) * width)).padEnd(width, ' ')}] ${Math.floor((Math.min(done, total) / total) * 100)}% ${done}/${total} ${label}`
        : `${done} ${label}`;
    stream.write(`\r\x1b[2K${text.slice(0, (stream.columns || 80) - 1)}`);
  };
  return {
    start(t, l) {
      total = t;
      done = 0;
      label = l;
      render(true);
    },
    tick(n, l) {
      done += n;
      if (l) label = l;
      render();
    },
    done() {
      render(true);
      stream.write('\n');
    },
  };
}
