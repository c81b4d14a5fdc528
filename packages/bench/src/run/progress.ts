/**
 * The progress indicator: on a terminal, one line rewritten in place (step n of N, what runs,
 * seconds elapsed); elsewhere (a log, a pipe, a test) one plain line per step. It writes to
 * stderr, so stdout carries only results.
 */

/** What the workloads report as they go. */
export interface Progress {
  /** Starts a step; `expectedSeconds` is shown when known. */
  step(label: string, expectedSeconds?: number): void;
  /** Clears the line; call once at the end. */
  done(): void;
}

/** A `Progress` that says nothing (tests, `--quiet`). */
export const silentProgress: Progress = { step: () => undefined, done: () => undefined };

/** The width a terminal line is cut to when the terminal does not say (or says 0). */
const DEFAULT_COLUMNS = 100;

/**
 * The terminal's width in columns. Some pseudo-terminals report 0, which cut one character
 * off every line (a slice to -1); they are treated as not saying.
 */
function lineWidth(stream: NodeJS.WriteStream): number {
  const columns = stream.columns;
  return typeof columns === 'number' && columns > 0 ? columns : DEFAULT_COLUMNS;
}

/** Refresh period of the terminal line while the main thread is free (multi-worker steps). */
const REFRESH_MS = 200;

/**
 * Makes the progress indicator.
 * @param totalSteps steps expected, for "n/N"; 0 when unknown
 */
export function createProgress(totalSteps: number, stream: NodeJS.WriteStream = process.stderr): Progress {
  let stepNumber = 0;
  let label = '';
  let stepStarted = 0;
  const benchStarted = performance.now();
  const counter = (): string => (totalSteps > 0 ? `${stepNumber}/${totalSteps}` : `${stepNumber}`);
  if (!stream.isTTY) {
    return {
      step(next) {
        stepNumber++;
        stream.write(`[${counter()}] ${next}\n`);
      },
      done: () => undefined,
    };
  }
  const render = (): void => {
    const stepSeconds = ((performance.now() - stepStarted) / 1000).toFixed(1);
    const totalSeconds = ((performance.now() - benchStarted) / 1000).toFixed(0);
    const line = `[${counter()}] ${label}  ${stepSeconds} s  (total ${totalSeconds} s)`;
    stream.write(`\r\x1b[2K${line.slice(0, lineWidth(stream) - 1)}`);
  };
  const timer = setInterval(render, REFRESH_MS);
  timer.unref();
  return {
    step(next) {
      stepNumber++;
      label = next;
      stepStarted = performance.now();
      render();
    },
    done() {
      clearInterval(timer);
      stream.write('\r\x1b[2K');
    },
  };
}
