// ort_bench.js — times an ONNX model in ONNX Runtime (onnxruntime-node) and prints one JSON line in the
// format of `lens bench --json`, so bench/compare.py can put the two side by side.
//
//   node bench/ort_bench.js -m MODEL [-b BATCH] [-t THREADS] [-n RUNS] [--warmup N] [--shape 3,224,224]
//
// Input: random float32 of the model's first input, batch dim = BATCH, other symbolic dims = 224 (as
// lens bench does), or --shape for the dims after the batch. peak_rss_mb is the process's peak RSS
// minus node's own, measured before onnxruntime is loaded; both raw figures are reported too.
'use strict';

// Peak RSS in MB. VmHWM first: getrusage's maxRSS survives exec, so a node started by a big parent
// (a Python that has exported a model) would report the parent's peak.
function peakRssMb() {
  try {
    const m = require('fs').readFileSync('/proc/self/status', 'utf8').match(/VmHWM:\s+(\d+) kB/);
    if (m) return Number(m[1]) / 1024;
  } catch (e) { /* not Linux */ }
  return process.resourceUsage().maxRSS / 1024;  // KiB
}

const baselineRssMb = peakRssMb();

function parseArgs(argv) {
  const opts = { model: null, batch: 1, threads: 2, runs: 20, warmup: 3, shape: null };
  const names = { '-m': 'model', '--model': 'model', '-b': 'batch', '--batch': 'batch', '-t': 'threads',
    '--threads': 'threads', '-n': 'runs', '--runs': 'runs', '--warmup': 'warmup', '--shape': 'shape' };
  for (let i = 0; i < argv.length; i += 2) {
    const key = names[argv[i]];
    if (!key || i + 1 >= argv.length) throw new Error(`bad argument '${argv[i]}'`);
    opts[key] = argv[i + 1];
  }
  if (!opts.model) throw new Error('-m MODEL is required');
  for (const k of ['batch', 'threads', 'runs', 'warmup']) {
    opts[k] = Number(opts[k]);
    if (!Number.isInteger(opts[k]) || opts[k] < (k === 'warmup' ? 0 : 1)) throw new Error(`bad --${k}`);
  }
  if (opts.shape) opts.shape = opts.shape.split(',').map(Number);
  return opts;
}

function inputDims(meta, opts) {
  if (opts.shape) return [opts.batch, ...opts.shape];
  if (!meta || !meta.isTensor || !meta.shape || meta.shape.length === 0) return [opts.batch, 3, 224, 224];
  return meta.shape.map((d, i) => (i === 0 ? opts.batch : typeof d === 'number' && d > 0 ? d : 224));
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const ort = require('onnxruntime-node');
  const now = () => Number(process.hrtime.bigint()) / 1e6;

  const t0 = now();
  const session = await ort.InferenceSession.create(opts.model, {
    intraOpNumThreads: opts.threads, interOpNumThreads: 1, graphOptimizationLevel: 'all',
    executionMode: 'sequential',
  });
  const loadMs = now() - t0;

  const meta = session.inputMetadata ? session.inputMetadata[0] : null;
  if (meta && meta.isTensor && meta.type !== 'float32') throw new Error(`input type ${meta.type} is not float32`);
  const dims = inputDims(meta, opts);
  const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = Math.random() * 2 - 1;
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, dims) };

  const times = [];
  for (let r = 0; r < opts.warmup + opts.runs; r++) {
    const start = now();
    await session.run(feeds);
    if (r >= opts.warmup) times.push(now() - start);
  }
  const total = times.reduce((a, b) => a + b, 0);
  times.sort((a, b) => a - b);
  const pick = (num, den) => times[Math.min(Math.floor((opts.runs * num) / den), opts.runs - 1)];  // as lens bench
  const peakMb = peakRssMb();
  const r3 = (x) => Math.round(x * 1000) / 1000;
  console.log(JSON.stringify({
    model: opts.model, batch: opts.batch, threads: opts.threads, load_ms: r3(loadMs),
    latency_ms: { min: r3(times[0]), p50: r3(pick(1, 2)), p90: r3(pick(9, 10)) },
    images_per_s: Math.round((opts.batch * opts.runs / (total / 1e3)) * 100) / 100,
    peak_rss_mb: Math.round((peakMb - baselineRssMb) * 10) / 10,
    process_peak_rss_mb: Math.round(peakMb * 10) / 10, node_baseline_rss_mb: Math.round(baselineRssMb * 10) / 10,
    runtime: `onnxruntime-node ${require('onnxruntime-node/package.json').version}`, input_shape: dims,
  }));
  await session.release();
}

main().catch((e) => { console.error(`ort_bench: ${e.message}`); process.exit(1); });
