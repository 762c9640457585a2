/** Where a command writes what it is doing (stderr), separate from its results (stdout). */
export interface ProgressOptions {
  /** Redraw a bar in place (default: when the stream is a TTY). */
  readonly tty?: boolean;
  /** Print nothing but errors. */
  readonly quiet?: boolean;
  /** Plain-line mode: at most one line per this many milliseconds per bar (default 2000). */
  readonly interval?: number;
}

/** One unit of long work (epochs, users, images) with a known total. */
export interface ProgressBar {
  /**
   * Sets the count done, with a short status (loss, metric, rate). Without a terminal, lines
   * are printed at most every few seconds or quarter; `always` prints this one regardless.
   */
  update(done: number, status?: string, always?: boolean): void;
  /** Ends the bar with a final line (`done` when it stopped short of the total, e.g. early stopping). */
  finish(status?: string, done?: number): void;
}

const WIDTH = 28;

/**
 * Progress reporting: a bar redrawn in place on a TTY, plain lines otherwise (logs, CI),
 * nothing with `quiet`.
 */
export class Progress {
  private readonly stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  private readonly tty: boolean;
  private readonly quiet: boolean;
  private readonly interval: number;
  private drawn = false;

  constructor(stream: NodeJS.WritableStream = process.stderr, options: ProgressOptions = {}) {
    this.stream = stream;
    this.tty = options.tty ?? (stream as { isTTY?: boolean }).isTTY === true;
    this.quiet = options.quiet ?? false;
    this.interval = options.interval ?? 2000;
  }

  /** A message on its own line. */
  log(message: string): void {
    if (this.quiet) return;
    this.clear();
    this.stream.write(`${message}\n`);
  }

  private clear(): void {
    if (this.tty && this.drawn) {
      this.stream.write('\r\u001b[2K');
      this.drawn = false;
    }
  }

  /** Starts a bar for `total` units of `label`. */
  bar(label: string, total: number): ProgressBar {
    const started = performance.now();
    let lastLine = 0;
    let lastFraction = -1;
    const render = (done: number, status: string, cut = true): string => {
      const fraction = total > 0 ? Math.min(1, done / total) : 1;
      const seconds = (performance.now() - started) / 1000;
      const eta =
        fraction > 0 && fraction < 1
          ? ` eta ${formatSeconds((seconds / fraction) * (1 - fraction))}`
          : '';
      const counts = `${done}/${total}`;
      if (!this.tty)
        return `${label} ${counts} (${formatSeconds(seconds)})${status ? ` ${status}` : ''}`;
      const filled = Math.round(fraction * WIDTH);
      const bar = `${'█'.repeat(filled)}${'░'.repeat(WIDTH - filled)}`;
      const line = `${label} ${bar} ${counts} ${(fraction * 100).toFixed(0)}%${eta}${status ? ` ${status}` : ''}`;
      const columns = this.stream.columns ?? 120;
      // Redrawn lines must fit the terminal; the final line is printed whole.
      return cut && line.length > columns - 1 ? line.slice(0, columns - 1) : line;
    };
    return {
      update: (done, status = '', always = false) => {
        if (this.quiet) return;
        if (this.tty) {
          this.stream.write(`\r\u001b[2K${render(done, status)}`);
          this.drawn = true;
          return;
        }
        const now = performance.now();
        const fraction = total > 0 ? done / total : 1;
        if (always || now - lastLine >= this.interval || fraction - lastFraction >= 0.25) {
          lastLine = now;
          lastFraction = fraction;
          this.stream.write(`${render(done, status)}\n`);
        }
      },
      finish: (status = '', done = total) => {
        if (this.quiet) return;
        this.clear();
        if (!this.tty && status === '' && lastFraction >= 1) return;
        this.stream.write(`${render(done, status, false)}\n`);
      },
    };
  }
}

/** `1m 05s`, `12.3s`. */
export function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds - m * 60);
  return `${m}m ${String(s).padStart(2, '0')}s`;
}
