#!/usr/bin/env python3
"""opab.py - per-layer A/B of two lens builds on one model, steadier than whole-model p50s on a noisy machine.

Each round runs `lens bench --per-op` in --procs processes per build (one timed run each, after warmups), the two
builds alternating (A then B, then B then A), and keeps each layer's minimum over the round's processes. The sum of
those minima is the round's figure for a build; a kernel change then shows in its own layers while the machine's
slow phases, which stretch whole processes, mostly fall out of the minima.

    python3 bench/opab.py bench/out/resnet50.onnx build/lens ../other/build/lens
    python3 bench/opab.py bench/out/vit_b_16.onnx build/lens --procs 4 --rounds 2 --threads 1
    python3 bench/opab.py MODEL A B --rt         # under chrt -f 10 (needs the right to)

Prints the sums per round, then the layers whose medians over the rounds differ most (B - A). Not run by CI.
"""
import argparse
import json
import statistics
import subprocess
import sys


def layer_minima(lens, model, procs, threads, warmup, rt):
    """Each layer's minimum over procs processes of one timed run."""
    best = {}
    for _ in range(procs):
        cmd = (['chrt', '-f', '10'] if rt else []) + [lens, 'bench', '-m', model, '-t', str(threads), '-n', '1',
                                                      '--warmup', str(warmup), '--json', '--per-op']
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode:
            sys.exit(f'{" ".join(cmd)} failed: {out.stderr.strip()}')
        for layer in json.loads(out.stdout)['profile']['layers']:
            name = f"{layer['name']} ({layer['op']})"
            best[name] = min(best.get(name, float('inf')), layer['ms'])
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('model')
    ap.add_argument('builds', nargs='+', metavar='LENS', help='one or two lens binaries (A, B)')
    ap.add_argument('--procs', type=int, default=6, help='processes per build per round (default 6)')
    ap.add_argument('--rounds', type=int, default=3, help='rounds (default 3)')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--top', type=int, default=12, help='layers to list (default 12)')
    ap.add_argument('--rt', action='store_true', help='run each process under chrt -f 10')
    args = ap.parse_args()
    if len(args.builds) > 2:
        ap.error('one or two lens binaries')
    names = 'AB'[:len(args.builds)]
    per_round = {n: [] for n in names}
    for r in range(args.rounds):
        order = list(zip(names, args.builds))
        if r % 2:
            order.reverse()
        for n, lens in order:
            per_round[n].append(layer_minima(lens, args.model, args.procs, args.threads, args.warmup, args.rt))
        print(f'round {r + 1}: ' + '  '.join(f'{n} {sum(per_round[n][-1].values()):.3f} ms' for n in names))
    median = {n: {k: statistics.median(m[k] for m in per_round[n] if k in m) for k in per_round[n][0]}
              for n in names}
    for n in names:
        print(f'{n}: sum of per-layer medians {sum(median[n].values()):.3f} ms ({args.builds[names.index(n)]})')
    if len(names) == 2:
        common = [k for k in median['A'] if k in median['B']]
        common.sort(key=lambda k: -abs(median['B'][k] - median['A'][k]))
        print(f'{"A ms":>9} {"B ms":>9} {"B - A":>8}  layer')
        for k in common[:args.top]:
            a, b = median['A'][k], median['B'][k]
            print(f'{a:9.3f} {b:9.3f} {b - a:+8.3f}  {k}')
    else:
        top = sorted(median['A'].items(), key=lambda kv: -kv[1])[:args.top]
        for k, v in top:
            print(f'{v:9.3f}  {k}')


if __name__ == '__main__':
    main()
