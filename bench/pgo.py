#!/usr/bin/env python3
"""Profile-guided build of gwanmun: instrument, train on proxy traffic, rebuild.

One command:  python3 bench/pgo.py        (about 7 minutes on 2 cores)

Result: target/release/gwanmun-pgo, the same source and the same release
profile as `cargo build --release`, compiled a second time with the
profile of a training run (rustc's -Cprofile-generate / -Cprofile-use).
What it changes is layout, not behaviour: code the training ran is laid
out together and inlined where it is hot, code it never ran is optimized
for size and moved aside. On gwanmun's proxy path the first-level
instruction cache is what user time is spent waiting on (see
docs/performance.md), so layout is what moves it.

Steps:
1. installs llvm-profdata for rustc's own LLVM major version from Debian's
   packages (llvm-N) if it is missing: profiles are only read by the
   matching version;
2. builds an instrumented gwanmun (target/pgo-gen);
3. trains it in the benchmark's layout (the nginx origin, 127.0.0.1 only,
   every load bounded in time): HTTP/1.1 plain routes at 64 and 256
   connections, HTTP/2, POSTs with a small JSON body, RS256 and HS256
   tokens (one repeated and 10,000 distinct), and a few hundred refused requests (no token, a bad token,
   no route, a malformed head), then stops it with SIGTERM so the profile
   is written;
4. merges the profile and builds target/release/gwanmun-pgo from it, then
   runs the same loads against it for a second each: every request of the
   training loads must succeed, in training and in this check.

Training traffic is the benchmark's traffic, which is also what a gateway
in front of services spends its time on (GETs and small POSTs through
routes, JWT checks, keep-alive). Paths it does not run (retries, WebSockets,
large or chunked bodies, ES256, HTTP/2 upstreams) are built for size:
correct, a little slower than in the plain build. Run bench/ab.py against the plain build to
see what it buys on a given machine.
"""

import argparse
import glob
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402

ROOT = R.ROOT


def llvm_profdata():
    """llvm-profdata of rustc's LLVM major version, installed if missing."""
    out = subprocess.run(["rustc", "-vV"], capture_output=True, text=True, check=True).stdout
    m = re.search(r"LLVM version: (\d+)", out)
    host = re.search(r"host: (\S+)", out)
    if not m or not host:
        raise RuntimeError("rustc -vV names no LLVM version or host")
    major = m.group(1)
    name = f"llvm-profdata-{major}"
    if shutil.which(name) is None:
        R.log(f"installing llvm-{major} (for {name}) from Debian's packages")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", f"llvm-{major}"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    return shutil.which(name) or name, host.group(1)


def cargo_build(target_dir, rustflags, triple):
    env = {**os.environ, "CARGO_TARGET_DIR": target_dir, "RUSTFLAGS": rustflags}
    # --target: the flags apply to gwanmun and its crates, not to build
    # scripts and proc-macros run on the host during the build.
    subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "gwanmun", "--target", triple],
                   cwd=ROOT, env=env, check=True)
    return os.path.join(target_dir, triple, "release", "gwanmun")


def post_script(tmp):
    """A wrk script for POSTs with a small JSON body: requests with a body take
    the streaming path (hyper's upstream client), which plain GETs never run."""
    lua = os.path.join(tmp, "post.lua")
    body = '{"title": "' + "x" * 180 + '"}'
    with open(lua, "w") as f:
        f.write(f"""
wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
""")
    return lua


def refused(port, n):
    """Requests the gateway answers itself: the error paths, a few hundred."""
    bad = [
        b"GET /api/bench HTTP/1.1\r\nHost: b\r\n\r\n",
        b"GET /api/bench HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer abc.def.ghi\r\n\r\n",
        b"GET /nothing/here HTTP/1.1\r\nHost: b\r\n\r\n",
        b"GET /api/%2e%2e/x HTTP/1.1\r\nHost: b\r\n\r\n",
        b"GET /api/bench HTTP/1.1\r\nHost: b\r\nContent-Length: x\r\n\r\n",
        b"BREW\r\n\r\n",
    ]
    for i in range(n):
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(bad[i % len(bad)])
            try:
                s.recv(4096)
            except OSError:
                pass


def train(binary, seconds, what="training"):
    """Runs the training loads against `binary`; every request must succeed."""
    tmp = tempfile.mkdtemp(prefix="gwanmun-pgo-")
    procs = []
    try:
        ups = [R.free_port() for _ in range(3)]
        procs.append(R.origin(tmp, ups))
        for p in ups:
            R.wait_port(p)
        key, pub, secret = R.make_keys(tmp)
        rs = R.rs256_tokens(key, 10_000)
        hs = R.hs256_tokens(secret, 10_000)
        scripts = {name: R.wrk_script(tmp, name, toks) for name, toks in
                   (("rs_one", rs[:1]), ("rs_many", rs), ("hs_one", hs[:1]), ("hs_many", hs))}
        configs = [
            (None, [(64, None, "h1"), (256, None, "h1"), (64, None, "h2"), (64, post_script(tmp), "h1")]),
            (R.gwanmun_auth_config(pub, secret, tmp),
             [(64, scripts[s], "h1") for s in ("rs_one", "rs_many", "hs_one", "hs_many")]),
        ]
        for auth, loads in configs:
            port = R.free_port()
            proc = R.gwanmun(tmp, port, ups, auth=auth, binary=binary)
            try:
                R.wait_port(port)
                for conns, script, kind in loads:
                    R.log(f"{what}: {'jwt' if auth else 'plain'} {kind} c{conns} "
                          f"{os.path.basename(script) if script else ''}")
                    res = R.run_h2load(port, seconds) if kind == "h2" else R.run_wrk(port, conns, seconds, script)
                    if res["requests"] == 0 or res["errors"]:
                        raise RuntimeError(f"{binary}: {res['requests']} requests, {res['errors']} errors "
                                           f"({'jwt' if auth else 'plain'} {kind} c{conns})")
                refused(port, 300)
                # SIGTERM: the gateway drains and returns from main, and
                # the profile runtime writes its file at exit.
                os.killpg(proc.p.pid, signal.SIGTERM)
                proc.p.wait(timeout=60)
            finally:
                proc.stop()
    finally:
        for p in procs:
            p.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=4, help="length of each training load")
    ap.add_argument("--out", default=os.path.join(ROOT, "target/release/gwanmun-pgo"))
    args = ap.parse_args()
    R.ensure_tools()
    R.raise_fd_limit()
    profdata, triple = llvm_profdata()
    data = os.path.join(ROOT, "target/pgo-data")
    shutil.rmtree(data, ignore_errors=True)
    os.makedirs(data)
    R.log("building the instrumented gateway")
    gen = cargo_build(os.path.join(ROOT, "target/pgo-gen"), f"-Cprofile-generate={data}", triple)
    train(gen, args.seconds)
    raws = glob.glob(os.path.join(data, "*.profraw"))
    if not raws:
        raise RuntimeError("the training run wrote no profile")
    merged = os.path.join(data, "merged.profdata")
    subprocess.run([profdata, "merge", "-o", merged, *raws], check=True)
    # Named by its content: cargo does not watch the file a flag names, but a
    # new flag rebuilds every crate, so each crate is built from this profile.
    with open(merged, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    kept = os.path.join(ROOT, "target/pgo-profiles")
    os.makedirs(kept, exist_ok=True)
    named = os.path.join(kept, f"{digest}.profdata")
    shutil.copy2(merged, named)
    merged = named
    R.log("building the profile-guided gateway")
    use = cargo_build(os.path.join(ROOT, "target/pgo-use"), f"-Cprofile-use={merged}", triple)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    R.log("checking the profile-guided gateway under the same loads")
    train(use, 1, what="check")
    shutil.copy2(use, args.out)
    R.log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
