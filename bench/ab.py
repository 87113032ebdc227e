#!/usr/bin/env python3
"""Alternating A/B runs: two or more proxies, one case at a time, seconds apart.

    python3 bench/ab.py A,B[,C...] CASES [--seconds 6] [--rounds 5] [--conns 64]

A candidate is a path to a gwanmun binary, or one of nginx, haproxy,
nginx-fwd, haproxy-fwd (configured as in run.py). CASES is a comma list of:

  plain   the catch-all route, no token
  same    the plain route under the RS256 token script (the JWT cases' baseline)
  hs      an HS256 route, 10,000 distinct tokens rotated per request (cold)
  hsone   an HS256 route, one token repeated (cached)
  rs      an RS256 route, 10,000 distinct tokens
  rsone   an RS256 route, one token repeated
  h2      HTTP/2 (h2c) with h2load, 64 connections x 4 streams

Each round runs every case on every candidate back to back, so the two
sides of a pair are measured seconds apart, not minutes as in run.py's
rounds: on a shared machine whose speed drifts, the ratio taken within each
round (printed as median [lowest, highest] over the rounds) is what to
read. Same layout as run.py: the proxy and the nginx origin on CPU 0, the
load generator on CPU 1, one worker each, 127.0.0.1 only, every run bounded.
Use `cargo build --release` output copied aside for each side (a build
overwrites target/release/gwanmun).
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402

AUTH_CASES = ("hs", "hsone", "rs", "rsone")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("candidates", help="comma list: gwanmun binaries, nginx, haproxy, nginx-fwd, haproxy-fwd")
    ap.add_argument("cases", help="comma list: plain, same, hs, hsone, rs, rsone, h2")
    ap.add_argument("--seconds", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--conns", type=int, default=64)
    args = ap.parse_args()
    cands = args.candidates.split(",")
    cases = args.cases.split(",")
    unknown = [c for c in cases if c not in ("plain", "same", "h2") + AUTH_CASES]
    if unknown:
        raise SystemExit(f"unknown case(s): {', '.join(unknown)}")

    R.ensure_tools()
    R.raise_fd_limit()
    tmp = tempfile.mkdtemp(prefix="gwanmun-ab-")
    origin = None
    try:
        ups = [R.free_port() for _ in range(3)]
        origin = R.origin(tmp, ups)
        for p in ups:
            R.wait_port(p)
        key, pub, secret = R.make_keys(tmp)
        scripts = {}
        if any(c in ("rs", "rsone", "same") for c in cases):
            rs = R.rs256_tokens(key, 10_000 if "rs" in cases else 1)
            scripts["rs"] = R.wrk_script(tmp, "rs", rs)
            scripts["rsone"] = scripts["same"] = R.wrk_script(tmp, "rsone", rs[:1])
        if any(c in ("hs", "hsone") for c in cases):
            hs = R.hs256_tokens(secret, 10_000)
            scripts["hs"] = R.wrk_script(tmp, "hs", hs)
            scripts["hsone"] = R.wrk_script(tmp, "hsone", hs[:1])
        auth = R.gwanmun_auth_config(pub, secret, tmp)

        def start(cand, case, port):
            h2 = case == "h2"
            if cand in ("nginx", "nginx-fwd"):
                return R.nginx_proxy(tmp, port, ups, h2=h2, fwd=cand == "nginx-fwd")
            if cand in ("haproxy", "haproxy-fwd"):
                return R.haproxy(tmp, port, ups, h2=h2, fwd=cand == "haproxy-fwd")
            return R.gwanmun(tmp, port, ups, auth=auth if case in AUTH_CASES else None, binary=cand)

        results = {}
        for rnd in range(args.rounds):
            for case in cases:
                for i, cand in enumerate(cands):
                    port = R.free_port()
                    proc = start(cand, case, port)
                    try:
                        r = R.measure(proc, port, args.conns, args.seconds, scripts.get(case),
                                      "h2" if case == "h2" else "h1", origin_proc=origin)
                    finally:
                        proc.stop()
                    results.setdefault((case, i), []).append(r)
                    print(f"round {rnd + 1} {case:6} {i} {r['rps']:9.0f} req/s  cpu {r['cpu_us_per_req']:5.2f} us"
                          f" (user {r['user_us_per_req']:5.2f} + kernel {r['kernel_us_per_req']:5.2f})"
                          f"  cs/req {r['switches_per_req']:.2f}  p99 {r['p99_ms']} ms", flush=True)

        print("\nmedians; ratio = req/s against the first candidate, taken within each round")
        for case in cases:
            base = results[(case, 0)]
            for i, cand in enumerate(cands):
                rs_ = results[(case, i)]
                ratios = [a["rps"] / b["rps"] for a, b in zip(rs_, base) if b["rps"]]
                med = lambda k: statistics.median(x[k] for x in rs_)  # noqa: E731
                print(f"{case:6} {os.path.basename(cand):16} {med('rps'):9.0f} req/s  cpu {med('cpu_us_per_req'):5.2f}"
                      f" (user {med('user_us_per_req'):5.2f})  cs/req {med('switches_per_req'):.2f}"
                      f"  ratio {statistics.median(ratios):.3f} [{min(ratios):.3f}, {max(ratios):.3f}]")
    finally:
        if origin:
            origin.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
