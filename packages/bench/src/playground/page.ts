/// <reference lib="dom" />
/**
 * The playground page (index.html): the person picks one to three backends, a workload or a
 * trace (one of heaplab's, or a file of their own), and steps or plays it; every backend
 * plays the same requests on a heap of its own, side by side, and its panel (panel.ts)
 * redraws after every step. Any change of a picker loads the choice afresh: new heaps, the
 * maps empty, nothing played.
 *
 * The page's state is on `<body data-state>`: `loading`, `ready` (nothing played), `paused`,
 * `playing`, `done` (every request played), or `error` (the status line says why), so a
 * test or a person can tell where a play is.
 */

import { AllocError, requireSharedMemory, type Trace } from '@heaplab/core';

import { BACKEND_CHOICES, choiceOf } from './backends.js';
import { legendEntries } from './heap-map-canvas.js';
import { HeapSession } from './heap-session.js';
import { BackendPanel, type MapExtent } from './panel.js';
import { fetchTrace, fetchTraceIndex, readTraceFile } from './trace-list.js';
import { PLAYGROUND_WORKLOADS, workloadOf } from './workloads.js';

/** Most trace threads a play takes: the page and seven workers per backend. */
const MAX_PLAY_THREADS = 8;
/** Pause between two steps of a play, so the page draws and stays responsive. */
const PLAY_PAUSE_MS = 10;
/** Requests per step the speed picker offers. */
const SPEEDS = [1, 10, 100, 500, 2000];
const DEFAULT_SPEED = 100;
/** The backends picked when the page opens: a free-list allocator and a segregated-fit one. */
const DEFAULT_BACKENDS = ['tlsf', 'mimalloc', ''];

type PageState = 'loading' | 'ready' | 'paused' | 'playing' | 'done' | 'error';

/** The element with id `id`. @throws Error when the page lacks it */
function byId<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`the page has no #${id}`);
  return found as T;
}

const backendPickers = [1, 2, 3].map((n) => byId<HTMLSelectElement>(`backend-${n}`));
const sourcePicker = byId<HTMLSelectElement>('source');
const workloadPicker = byId<HTMLSelectElement>('workload');
const tracePicker = byId<HTMLSelectElement>('trace');
const traceFile = byId<HTMLInputElement>('trace-file');
const speedPicker = byId<HTMLSelectElement>('speed');
const extentPicker = byId<HTMLSelectElement>('map-extent');
const stepButton = byId<HTMLButtonElement>('step');
const playButton = byId<HTMLButtonElement>('play');
const pauseButton = byId<HTMLButtonElement>('pause');
const resetButton = byId<HTMLButtonElement>('reset');
const statusLine = byId<HTMLElement>('status');
const description = byId<HTMLElement>('description');
const panelsBox = byId<HTMLElement>('panels');

let panels: BackendPanel[] = [];
let playing = false;
/** Every action runs after the one before has finished: loads, steps and plays never overlap. */
let queue: Promise<void> = Promise.resolve();

function setState(state: PageState, status: string): void {
  document.body.dataset['state'] = state;
  statusLine.textContent = status;
  const loaded = panels.length > 0 && state !== 'loading' && state !== 'error';
  const finished = panels.every((panel) => panel.session.finished);
  stepButton.disabled = !loaded || playing || finished;
  playButton.disabled = !loaded || playing || finished;
  pauseButton.disabled = !playing;
  resetButton.disabled = state === 'loading';
}

/** Runs `action` after every action queued before it; a failure is shown and logged. */
function enqueue(action: () => Promise<void>): void {
  queue = queue.then(action).catch((error: unknown) => {
    playing = false;
    const message = error instanceof Error ? error.message : String(error);
    // A trace the person gave that is no trace is their mistake, not the page's: it is shown, not logged.
    if (!(error instanceof AllocError && error.kind === 'InvalidParam')) console.error(error);
    setState('error', message);
  });
}

function option(value: string, label: string, title = ''): HTMLOptionElement {
  const made = document.createElement('option');
  made.value = value;
  made.textContent = label;
  if (title !== '') made.title = title;
  return made;
}

/** The trace the pickers name. */
async function chosenTrace(): Promise<{ trace: Trace; name: string }> {
  switch (sourcePicker.value) {
    case 'workload':
      return { trace: workloadOf(workloadPicker.value).make(), name: workloadPicker.value };
    case 'trace':
      return { trace: await fetchTrace(tracePicker.value), name: tracePicker.value };
    default: {
      const file = traceFile.files?.[0];
      if (file === undefined) throw new AllocError('InvalidParam', 'pick a trace file (heaplab text or JSON-lines spelling) first');
      return { trace: await readTraceFile(file), name: file.name };
    }
  }
}

/** Closes the sessions shown and removes their panels. */
async function closePanels(): Promise<void> {
  const closing = panels;
  panels = [];
  panelsBox.replaceChildren();
  for (const panel of closing) await panel.session.close();
}

/** Loads the pickers' choice: fresh heaps, nothing played. */
async function load(): Promise<void> {
  playing = false;
  setState('loading', 'loading…');
  await closePanels();
  const labels = [...new Set(backendPickers.map((picker) => picker.value).filter((label) => label !== ''))];
  if (labels.length === 0) throw new AllocError('InvalidParam', 'pick at least one backend');
  const { trace, name } = await chosenTrace();
  if (trace.threads > MAX_PLAY_THREADS) {
    throw new AllocError('InvalidParam', `${name} has ${trace.threads} threads; the playground plays at most ${MAX_PLAY_THREADS}`);
  }
  description.textContent = `${name}: ${trace.description || '(no description)'}; ${trace.requests.length.toLocaleString('en-US')} requests on ${trace.threads} thread${
    trace.threads > 1 ? 's (thread 0 on the page, the others on web workers)' : ' (the page)'
  }`;
  for (const label of labels) {
    const panel = new BackendPanel(panelsBox, await HeapSession.open(choiceOf(label), trace));
    panels.push(panel);
    panel.render(extentPicker.value as MapExtent);
  }
  setState('ready', `loaded ${name} on ${labels.join(', ')}`);
}

/** Plays `speed` more requests on every backend, then redraws. */
async function step(): Promise<void> {
  const speed = Number(speedPicker.value);
  await Promise.all(panels.map((panel) => panel.session.advance(speed)));
  for (const panel of panels) panel.render(extentPicker.value as MapExtent);
}

function progressText(): string {
  const session = panels[0]?.session;
  return session === undefined ? '' : `${session.done.toLocaleString('en-US')} of ${session.trace.requests.length.toLocaleString('en-US')} requests played`;
}

function afterStep(): void {
  if (panels.every((panel) => panel.session.finished)) {
    playing = false;
    setState('done', `done: ${progressText()}`);
  } else {
    setState(playing ? 'playing' : 'paused', progressText());
  }
}

/** Plays until the end or Pause. */
async function play(): Promise<void> {
  playing = true;
  const started = performance.now();
  setState('playing', progressText());
  while (playing && !panels.every((panel) => panel.session.finished)) {
    await step();
    // How long this Play took to the end, its pauses between steps included (a figure for the docs and the test).
    if (panels.every((panel) => panel.session.finished)) document.body.dataset['playMs'] = String(Math.round(performance.now() - started));
    afterStep();
    await new Promise((resolve) => setTimeout(resolve, PLAY_PAUSE_MS));
  }
  afterStep();
}

/** Fills the pickers and wires the controls. */
async function start(): Promise<void> {
  // Without cross-origin isolation there is no SharedArrayBuffer: core's check says which headers to send.
  requireSharedMemory();
  backendPickers.forEach((picker, index) => {
    if (index > 0) picker.append(option('', '(none)'));
    for (const choice of BACKEND_CHOICES) picker.append(option(choice.label, choice.label, choice.descriptor.summary));
    picker.value = DEFAULT_BACKENDS[index]!;
  });
  for (const workload of PLAYGROUND_WORKLOADS) workloadPicker.append(option(workload.name, workload.name, workload.summary));
  for (const entry of await fetchTraceIndex()) {
    tracePicker.append(
      option(
        entry.file,
        `${entry.file} (${entry.requests.toLocaleString('en-US')} requests, ${entry.threads} thread${entry.threads > 1 ? 's' : ''})`,
        entry.description,
      ),
    );
  }
  for (const speed of SPEEDS) speedPicker.append(option(String(speed), `${speed} per step`));
  speedPicker.value = String(DEFAULT_SPEED);
  const legend = byId<HTMLElement>('legend');
  for (const { kind, colour } of legendEntries()) {
    const item = document.createElement('span');
    item.className = 'legend-item';
    item.style.setProperty('--swatch', colour);
    item.textContent = kind;
    legend.append(item);
  }
  // A change (or Reset) stops a play first: the play holds the queue until it stops.
  const reload = (): void => {
    playing = false;
    enqueue(load);
  };
  for (const picker of [...backendPickers, sourcePicker, workloadPicker, tracePicker, traceFile]) picker.addEventListener('change', reload);
  sourcePicker.addEventListener('change', () => {
    document.body.dataset['source'] = sourcePicker.value;
  });
  document.body.dataset['source'] = sourcePicker.value;
  stepButton.addEventListener('click', () =>
    enqueue(async () => {
      await step();
      afterStep();
    }),
  );
  playButton.addEventListener('click', () => enqueue(play));
  // Not queued: it must act while a play holds the queue.
  pauseButton.addEventListener('click', () => {
    playing = false;
  });
  resetButton.addEventListener('click', reload);
  // Redraws only: the heaps stay as they are.
  extentPicker.addEventListener('change', () =>
    enqueue(async () => {
      for (const panel of panels) panel.render(extentPicker.value as MapExtent);
    }),
  );
  await load();
}

enqueue(start);
