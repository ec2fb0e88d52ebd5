#!/usr/bin/python3
"""Compares lens with ONNX Runtime on the same CPU: same models, batch sizes and thread counts.

For every model and (batch, threads) pair it runs `lens bench --json` and bench/ort_bench.js
(onnxruntime-node) alternately for --rounds rounds, so that noise from the rest of the machine hits
both sides. Prints a markdown table with two ratios: each side's best-p50 round against the other's, and
the median of the rounds' own lens/ORT ratios (a load spike in one round moves the first, not the second); load
times are each side's median over the rounds, RSS the best-p50 round's.
Every raw JSON line goes to bench/out/results.jsonl.

Models: torchvision architectures with random but typical weights (tests/gen/make_model_fixtures.py's
make_typical: BatchNorm statistics calibrated and perturbed), exported once to bench/out/NAME.onnx
(opset 17, dynamic batch; reused when the file exists), and any .onnx given with --model-file.

Needs /usr/bin/python3 with torch 1.13, torchvision 0.14, onnx, numpy (only to export), node and npm
(bench/node_modules is filled with `npm install --ignore-scripts` when missing). Not run by CI.
Examples:
  bench/compare.py                                   # five models, batch 1 and 16, 2 threads
  bench/compare.py --models resnet50 --batch 1 --threads 1,2 --rounds 5
  bench/compare.py --models '' --model-file ../shared/models/mobilenetv2-12-int8.onnx
  bench/compare.py --scaling                         # ResNet-50: threads 1 vs 2, batch 1/4/16/64
  bench/compare.py --engines ort                     # ONNX Runtime only
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
OUT = os.path.join(BENCH, "out")
DEFAULT_MODELS = "resnet50,vit_b_16,convnext_tiny,mobilenet_v2,efficientnet_b0"
SCALING_BATCHES = (1, 4, 16, 64)


def export(name):
    """bench/out/NAME.onnx for torchvision model NAME, exported once by a child process, so that
    this one stays small (see run_once)."""
    path = os.path.join(OUT, name + ".onnx")
    if not os.path.exists(path):
        print("exporting %s ..." % name, file=sys.stderr, flush=True)
        subprocess.run([sys.executable, os.path.abspath(__file__), "--export-to", path, "--models", name], check=True)
    return path


def export_in_this_process(name, path):
    import torch
    import torchvision
    sys.path.insert(0, os.path.join(ROOT, "tests", "gen"))
    from make_model_fixtures import export_onnx, make_typical, seed_for

    torch.manual_seed(seed_for(name))
    model = torchvision.models.get_model(name, weights=None)
    make_typical(model, torch.randn(2, 3, 224, 224))
    export_onnx(model, torch.randn(1, 3, 224, 224), path + ".part")
    os.replace(path + ".part", path)  # a killed export never leaves a file that looks cached


def ensure_ort():
    if not os.path.isdir(os.path.join(BENCH, "node_modules", "onnxruntime-node")):
        print("installing onnxruntime-node in bench/ ...", file=sys.stderr, flush=True)
        subprocess.run(["npm", "install", "--ignore-scripts", "--no-package-lock", "--no-audit", "--no-fund"],
                       cwd=BENCH, check=True)


def command(engine, model, batch, threads, runs, args):
    common = ["-m", model, "-b", str(batch), "-t", str(threads), "-n", str(runs), "--warmup", str(args.warmup)]
    if engine == "lens":
        return [args.lens, "bench"] + common + ["--json"]
    return ["node", os.path.join(BENCH, "ort_bench.js")] + common


def run_once(engine, model, batch, threads, runs, args):
    """One bench process; returns its JSON dict, or {"error": ...}."""
    # Through a shell that forks: getrusage's peak RSS survives exec, and Python starts children with
    # vfork, so a directly started bench would report this process's peak as its own.
    cmd = ["/bin/sh", "-c", '"$@"; exit $?', "sh"] + command(engine, model, batch, threads, runs, args)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=args.timeout)
    except BaseException as exc:  # timeout or Ctrl-C: the bench is sh's child, so kill the whole group
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        if not isinstance(exc, subprocess.TimeoutExpired):
            raise
        return {"error": "timed out after %d s" % args.timeout}
    lines = [l for l in out.splitlines() if l.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (err.strip() or out.strip() or "no output").splitlines()[-1]
        return {"error": "exit %d: %s" % (proc.returncode, tail[:200])}
    return json.loads(lines[-1])


def measure(name, model, batch, threads, args, results):
    """Alternates the engines for args.rounds rounds; returns ({engine: best-p50 result}, [lens/ORT p50 ratio of
    each round where both ran])."""
    runs = args.runs or max(5, 20 // batch)  # big batches: fewer runs, each is long
    best = {}
    ratios = []
    loads = {}
    for round_index in range(args.rounds):
        order = args.engines if round_index % 2 == 0 else args.engines[::-1]  # ABBA: no side always goes first
        this_round = {}
        for engine in order:
            res = run_once(engine, model, batch, threads, runs, args)
            this_round[engine] = res
            record = dict(res, engine=engine, name=name, round=round_index, time=time.strftime("%Y-%m-%dT%H:%M:%S"))
            results.write(json.dumps(record) + "\n")
            results.flush()
            old = best.get(engine)
            if "error" not in res:
                loads.setdefault(engine, []).append(res["load_ms"])
            if "error" in res:
                best.setdefault(engine, res)
            elif old is None or "error" in old or res["latency_ms"]["p50"] < old["latency_ms"]["p50"]:
                best[engine] = res
        paired = ratio(this_round.get("lens"), this_round.get("ort"))
        if paired is not None:
            ratios.append(paired)
        print("  %s b=%d t=%d round %d done" % (name, batch, threads, round_index + 1), file=sys.stderr, flush=True)
    for engine, values in loads.items():  # load time: the median round's, which one slow disk read does not move
        best[engine] = dict(best[engine], load_ms_median=median(values))
    return best, ratios


def median(values):
    v = sorted(values)
    return (v[len(v) // 2] + v[(len(v) - 1) // 2]) / 2 if v else None


def cell(res, fmt, *keys):
    if res is None:
        return "-"
    if "error" in res:
        return "error"
    value = res
    for key in keys:
        value = value[key]
    return fmt % value


def ratio(lens, ort):
    """lens p50 / ORT p50, or None when either is missing or failed."""
    ok = lens and ort and "error" not in lens and "error" not in ort
    return lens["latency_ms"]["p50"] / ort["latency_ms"]["p50"] if ok else None


def print_table(rows):
    """lens/ORT is best p50 against best p50; "median of rounds" is the median of each round's own ratio, which a
    load spike in one round does not move."""
    print("| model | batch | threads | lens p50 ms | ORT p50 ms | lens/ORT | median of rounds | lens img/s | ORT img/s "
          "| median load ms lens / ORT | peak RSS MB lens / ORT |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for name, batch, threads, best, ratios in rows:
        lens, ort = best.get("lens"), best.get("ort")
        best_ratio, mid = ratio(lens, ort), median(ratios)
        print("| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s / %s | %s / %s |" % (
            name, batch, threads, cell(lens, "%.2f", "latency_ms", "p50"), cell(ort, "%.2f", "latency_ms", "p50"),
            "%.2f" % best_ratio if best_ratio else "-", "%.2f (%d)" % (mid, len(ratios)) if mid else "-",
            cell(lens, "%.1f", "images_per_s"), cell(ort, "%.1f", "images_per_s"),
            cell(lens, "%.0f", "load_ms_median"), cell(ort, "%.0f", "load_ms_median"),
            cell(lens, "%.0f", "peak_rss_mb"), cell(ort, "%.0f", "peak_rss_mb")))
    for name, batch, threads, best, _ in rows:
        for engine, res in sorted(best.items()):
            if "error" in res:
                print("\n%s %s b=%d t=%d: %s" % (engine, name, batch, threads, res["error"]))


def print_scaling(rows, threads_list, engines):
    """Thread speed-up at batch 1 and throughput against batch, for each engine."""
    by_key = {(batch, threads): best for _, batch, threads, best, _ in rows}
    print("\nThread scaling, batch 1 (p50 ms; speed-up against 1 thread):\n")
    print("| engine | " + " | ".join("%d thread(s)" % t for t in threads_list) + " | speed-up |")
    print("|---|" + "--:|" * (len(threads_list) + 1))
    for engine in engines:
        p50 = [by_key[(1, t)].get(engine, {}).get("latency_ms", {}).get("p50") for t in threads_list]
        speedup = "%.2f" % (p50[0] / p50[-1]) if p50[0] and p50[-1] else "-"
        print("| %s | %s | %s |" % (engine, " | ".join("%.2f" % p if p else "-" for p in p50), speedup))
    top = threads_list[-1]
    print("\nThroughput at %d threads (images/s):\n" % top)
    print("| engine | " + " | ".join("batch %d" % b for b in SCALING_BATCHES) + " |")
    print("|---|" + "--:|" * len(SCALING_BATCHES))
    for engine in engines:
        ips = [by_key[(b, top)].get(engine, {}).get("images_per_s") for b in SCALING_BATCHES]
        print("| %s | %s |" % (engine, " | ".join("%.1f" % v if v else "-" for v in ips)))


def int_list(text):
    return [int(x) for x in text.split(",") if x]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=None, help="torchvision names, comma-separated (default: %s; "
                        "none when --model-file is given)" % DEFAULT_MODELS)
    parser.add_argument("--model-file", action="append", default=[], help="an .onnx to compare too (repeatable)")
    parser.add_argument("--batch", type=int_list, default=[1, 16], help="batch sizes (default 1,16)")
    parser.add_argument("--threads", type=int_list, default=[2], help="thread counts (default 2)")
    parser.add_argument("--runs", type=int, default=0, help="timed runs per process (default max(5, 20/batch))")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs per process (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of lens and ORT (default 3)")
    parser.add_argument("--engines", default="lens,ort", help="lens,ort (default), lens or ort")
    parser.add_argument("--lens", default=os.path.join(ROOT, "build", "lens"), help="lens binary (default build/lens)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per bench process (default 1800)")
    parser.add_argument("--scaling", action="store_true",
                        help="ResNet-50 only: batch 1 at threads 1,2 and batch %s at 2 threads"
                        % ",".join(map(str, SCALING_BATCHES)))
    parser.add_argument("--export-to", help=argparse.SUPPRESS)  # internal: export(NAME) runs this
    args = parser.parse_args()
    if args.export_to:
        return export_in_this_process(args.models, args.export_to)
    args.engines = [e for e in args.engines.split(",") if e]
    if not args.engines or set(args.engines) - {"lens", "ort"}:
        parser.error("--engines takes lens, ort or lens,ort")

    os.makedirs(OUT, exist_ok=True)
    if args.scaling:
        models = [("resnet50", export("resnet50"))]
        threads_list = sorted(set([1, 2] + args.threads))
        configs = [(1, t) for t in threads_list] + [(b, threads_list[-1]) for b in SCALING_BATCHES if b != 1]
    else:
        names = args.models if args.models is not None else ("" if args.model_file else DEFAULT_MODELS)
        models = [(n, export(n)) for n in names.split(",") if n]
        models += [(os.path.splitext(os.path.basename(p))[0], os.path.abspath(p)) for p in args.model_file]
        configs = [(b, t) for b in args.batch for t in args.threads]
    if "ort" in args.engines:
        ensure_ort()
    if "lens" in args.engines and not os.access(args.lens, os.X_OK):
        sys.exit("compare.py: %s is not an executable (build lens, or pass --lens)" % args.lens)

    rows = []
    with open(os.path.join(OUT, "results.jsonl"), "a") as results:
        for name, path in models:
            for batch, threads in configs:
                rows.append((name, batch, threads) + measure(name, path, batch, threads, args, results))
    print_table(rows)
    print("\n%s; load average %.1f at the end; raw results: bench/out/results.jsonl" % (
        time.strftime("%Y-%m-%d %H:%M"), os.getloadavg()[0]))
    if args.scaling:
        print_scaling(rows, threads_list, args.engines)


if __name__ == "__main__":
    main()
