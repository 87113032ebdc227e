#!/usr/bin/env python3
"""User-space instructions per request, under callgrind: the steady figure.

    python3 bench/instructions.py BINARY CASE [--seconds 6] [--conns 8] [--top 30]

Runs BINARY (a gwanmun build; one with line tables names more: build with
CARGO_PROFILE_RELEASE_DEBUG=line-tables-only into another target directory;
or `nginx` / `haproxy`, configured as in run.py, plain and h2 cases only)
under `valgrind --tool=callgrind` in the bench layout (the nginx origin and
the proxy on CPU 0, the load generator on CPU 1), warms it up for 2 s,
zeroes the counters, runs the load, dumps, and prints instructions per
request and the functions with the most instructions of their own.
CASE: plain, hs (10,000 distinct HS256 tokens), hsone (one HS256 token
repeated) or h2 (h2load, 64 connections x 4 streams).

Wall-clock runs on a shared machine move by 10% or more between runs; an
instruction count moves by well under 1%, so a change of a few hundred
instructions a request shows here and nowhere else. Caveats: valgrind runs
without SHA-NI (aws-lc's SHA-256 falls back to its AVX code, about four times
the instructions: read JWT figures with that in mind), and instructions are
not time (cache misses and the kernel do not show). Needs valgrind (Debian
package `valgrind`; installed if missing). 127.0.0.1 only, every run bounded.
"""

import argparse
import collections
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402


def self_costs(path):
    """Costs of each function itself (not of its callees): {event: Counter}.
    Events: Ir (instructions), and with --sim the simulated cache misses
    (D1mr/D1mw first-level data read/write misses, ILmr/DLmr/DLmw last-level)
    and branch mispredictions (Bcm conditional, Bim indirect)."""
    names, events = {}, []
    costs = collections.defaultdict(collections.Counter)
    cur, after_calls = None, False

    def name(s):
        m = re.match(r"\((\d+)\)(?: (.*))?", s)
        if not m:
            return s
        if m.group(2):
            names[m.group(1)] = m.group(2)
        return names.get(m.group(1), s)

    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith("fn="):
                cur = name(line[3:])
            elif line.startswith("cfn="):
                name(line[4:])
            elif line.startswith("calls="):
                after_calls = True
            elif line and (line[0].isdigit() or line[0] in "+-*"):
                if after_calls:  # the inclusive cost of a call, not this function's own
                    after_calls = False
                    continue
                parts = line.split()
                if cur:
                    for ev, v in zip(events, parts[1:]):
                        costs[ev][cur] += int(v)
    return costs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary")
    ap.add_argument("case", choices=["plain", "hs", "hsone", "h2"])
    ap.add_argument("--seconds", type=int, default=6)
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--keep", metavar="FILE", help="also copy the callgrind dump to FILE (for callgrind_annotate --tree=caller)")
    ap.add_argument("--sim", action="store_true",
                    help="also simulate caches and branch prediction (slower): misses and mispredictions per request")
    args = ap.parse_args()
    if args.binary in ("nginx", "haproxy") and args.case not in ("plain", "h2"):
        raise SystemExit("nginx and haproxy: plain and h2 only")
    if shutil.which("valgrind") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "valgrind"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    R.ensure_tools()
    R.raise_fd_limit()
    tmp = tempfile.mkdtemp(prefix="gwanmun-cg-")
    origin = proc = None
    try:
        ups = [R.free_port() for _ in range(3)]
        origin = R.origin(tmp, ups)
        for p in ups:
            R.wait_port(p)
        script = None
        auth = None
        if args.case in ("hs", "hsone"):
            _, pub, secret = R.make_keys(tmp)
            hs = R.hs256_tokens(secret, 10_000)
            script = R.wrk_script(tmp, args.case, hs if args.case == "hs" else hs[:1])
            auth = R.gwanmun_auth_config(pub, secret, tmp)
        port = R.free_port()
        h2 = args.case == "h2"
        # Writes the config and gives the command line; the proxy itself is
        # started under valgrind below, as one process.
        if args.binary == "nginx":
            first = R.nginx_proxy(tmp, port, ups, h2=h2)
            extra = ["-g", "master_process off;"]
        elif args.binary == "haproxy":
            first = R.haproxy(tmp, port, ups, h2=h2)
            extra = ["-db"]
        else:
            first = R.gwanmun(tmp, port, ups, auth=auth, binary=os.path.abspath(args.binary))
            extra = []
        argv = first.argv + extra
        first.stop()
        out = os.path.join(tmp, "callgrind.out")
        proc = subprocess.Popen(
            ["taskset", "-c", "0", "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
            + (["--cache-sim=yes", "--branch-sim=yes"] if args.sim else []) + argv,
            env={**os.environ, "RUST_LOG": "warn"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        R.wait_port(port, timeout=120)
        load = (lambda s: R.run_h2load(port, s)) if h2 else (lambda s: R.run_wrk(port, args.conns, s, script))
        load(2)  # warm-up: pools, spare buffers, caches
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True, timeout=60)
        res = load(args.seconds)
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True, timeout=120)
        deadline = time.time() + 60
        while not glob.glob(out + ".*") and time.time() < deadline:
            time.sleep(0.2)
        dump = sorted(glob.glob(out + ".*"))[0]
        time.sleep(1)  # the dump is written before callgrind_control returns; be safe
        if args.keep:
            shutil.copy(dump, args.keep)
        costs = self_costs(dump)
        n = max(res["requests"], 1)
        total = sum(costs["Ir"].values())
        print(f"{args.case}: {res['requests']} requests, {total / n:,.0f} instructions per request")
        if args.sim:
            per = {ev: sum(c.values()) / n for ev, c in costs.items() if ev != "Ir"}
            print("per request: " + ", ".join(f"{ev} {v:,.1f}" for ev, v in per.items()))
        for fn, c in costs["Ir"].most_common(args.top):
            extra = ""
            if args.sim:
                extra = "  D1 miss " + f"{(costs['D1mr'][fn] + costs['D1mw'][fn]) / n:6.1f}"
            print(f"{c / n:8,.0f}  {100 * c / total:5.1f}%{extra}  {fn[:140]}")
        if args.sim:
            print("most first-level data misses:")
            d1 = collections.Counter({fn: costs["D1mr"][fn] + costs["D1mw"][fn] for fn in costs["D1mr"]})
            for fn, c in d1.most_common(args.top):
                print(f"{c / n:8.1f}  {fn[:140]}")
    finally:
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if origin:
            origin.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
