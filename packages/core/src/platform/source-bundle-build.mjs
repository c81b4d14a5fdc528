// Builds one worker bundle for source-bundle.ts, which runs this file in a child process
// (esbuild runs plugins only in its asynchronous API, and a worker is started synchronously).
// The request is the one argument, as JSON: the entry file, the backend module URLs to load
// first, the files of the registered backends' modules, core's backend-modules.ts and
// backend-registry.ts, where to write the bundle and the record of its inputs, the repository
// root and esbuild's module URL. See source-bundle.ts for what the bundle is.
import { readFileSync, renameSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, extname, isAbsolute, join, relative } from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';

const request = JSON.parse(process.argv[2]);
const esbuild = await import(request.esbuild);

const PRELUDE = 'heaplab-worker:prelude';
const ENTRY = 'heaplab-worker:entry';

// The prelude imports each backend module and registers it as loadBackendModule would; the
// entry imports the prelude first, so every module is registered before the worker's own
// module runs, as with the bootstrap, which loads them before it imports the entry. It also
// marks the thread as a bundled worker.
const registeredUrls = request.registeredModules.map((file) => pathToFileURL(file).href);
const prelude = [
  `import { adoptBackendModule } from ${JSON.stringify(request.backendModulesFile)};`,
  `import { markSourceBundleWorker } from ${JSON.stringify(request.backendRegistryFile)};`,
  ...request.backendModules.map((url, i) => `import * as module${i} from ${JSON.stringify(fileURLToPath(url))};`),
  // The modules of the backends the starting thread registered: given to the registry, which
  // takes one from here when attach would import it.
  ...request.registeredModules.map((file, i) => `import * as registered${i} from ${JSON.stringify(file)};`),
  `markSourceBundleWorker({ ${registeredUrls.map((url, i) => `${JSON.stringify(url)}: registered${i}`).join(', ')} });`,
  ...request.backendModules.map((url, i) => `adoptBackendModule(${JSON.stringify(url)}, module${i});`),
].join('\n');
const entry = `import ${JSON.stringify(PRELUDE)};\nimport ${JSON.stringify(request.entry)};\n`;

const LOADERS = { '.ts': 'ts', '.mts': 'ts', '.cts': 'ts', '.js': 'js', '.mjs': 'js' };

const heaplabWorker = {
  name: 'heaplab-worker',
  setup(build) {
    build.onResolve({ filter: /^heaplab-worker:/ }, (args) => ({ path: args.path, namespace: 'heaplab-worker' }));
    build.onLoad({ filter: /.*/, namespace: 'heaplab-worker' }, (args) => ({
      contents: args.path === PRELUDE ? prelude : entry,
      loader: 'js',
      resolveDir: request.root,
    }));
    // Packages other than heaplab's (and Node's own) stay imports: the worker resolves them
    // from the entry's package, beside which the bundle is written. `#...` are a heaplab
    // package's own imports (core's `#platform`), resolved here as Node would.
    build.onResolve({ filter: /^[^./#]/ }, (args) => {
      if (args.path.startsWith('@heaplab/') || isAbsolute(args.path) || args.namespace === 'heaplab-worker') return undefined;
      return { path: args.path, external: true };
    });
    // Each repository file keeps its own `import.meta.url`, so what it finds beside itself is
    // found as before (a worker's own entry, the bootstrap, trace files).
    build.onLoad({ filter: /\.(?:[cm]?ts|m?js)$/ }, (args) => {
      const inside = relative(request.root, args.path);
      if (inside.startsWith('..') || inside.split(/[\\/]/).includes('node_modules')) return undefined;
      const source = readFileSync(args.path, 'utf8');
      return {
        contents: source.replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)),
        loader: LOADERS[extname(args.path)] ?? 'js',
      };
    });
  },
};

const result = await esbuild.build({
  entryPoints: [ENTRY],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  conditions: ['heaplab-source'],
  // Node runs every module it imports; a bundler may drop modules of a package that says
  // `"sideEffects": false` when nothing of theirs is used, and core says so. A worker's entry
  // is imported for its effects alone, so the bundle keeps what Node would run.
  ignoreAnnotations: true,
  absWorkingDir: request.root,
  write: false,
  metafile: true,
  logLevel: 'silent',
  plugins: [heaplabWorker],
});

// Besides the modules, the bundle depends on how it was made: this script (the prelude it
// writes) and esbuild itself, so a change to either makes it again too.
const makers = [fileURLToPath(import.meta.url), fileURLToPath(new URL('../package.json', request.esbuild))];
const inputs = {};
for (const file of [...Object.keys(result.metafile.inputs).filter((input) => !input.startsWith('heaplab-worker:')).map((input) => join(request.root, input)), ...makers]) {
  const { size, mtimeMs } = statSync(file);
  inputs[file] = [size, mtimeMs];
}

// Written under temporary names and renamed, so a process that starts a worker on the same
// bundle at the same moment reads either the old file or the new one, never half of one.
mkdirSync(dirname(request.bundle), { recursive: true });
const suffix = `.${process.pid}.tmp`;
writeFileSync(request.bundle + suffix, result.outputFiles[0].contents);
renameSync(request.bundle + suffix, request.bundle);
writeFileSync(request.record + suffix, JSON.stringify({ inputs }));
renameSync(request.record + suffix, request.record);
