#!/usr/bin/env python3
"""Whole-proxy load benchmark: gwanmun against nginx and HAProxy, side by side.

One command:  python3 bench/run.py            (about 12 minutes with defaults)
              python3 bench/run.py --quick    (short rounds, for a smoke run)

Layout (same for every candidate): the proxy and a 3-listener nginx origin
(fixed 100-byte body) pinned to CPU 0, the load generator on CPU 1, one
worker/thread per proxy, HTTP/1.1 keep-alive to the client and to the
upstream. Rounds are interleaved (every candidate once per round) so drift
on a shared machine hits all candidates alike; figures are reported as
ratios to nginx and HAProxy from the same run.

Installs what it lacks from Debian's packages (nginx, haproxy, wrk,
nghttp2-client), builds gwanmun in release mode, targets 127.0.0.1 only,
bounds every run in time, and cleans up everything it started.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BODY = b"x" * 99 + b"\n"  # 100 bytes
HZ = os.sysconf(os.sysconf_names["SC_CLK_TCK"])


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def ensure_tools():
    need = {"nginx": "nginx", "haproxy": "haproxy", "wrk": "wrk", "h2load": "nghttp2-client"}
    missing = [pkg for tool, pkg in need.items() if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}")]
    if missing:
        log(f"installing {' '.join(missing)} from Debian's packages")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def raise_fd_limit():
    """10,000 held connections need more descriptors than the usual 20,000
    for HAProxy (2 per connection); children inherit the limit."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for want in (65536, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, soft), max(want, hard)))
            return
        except (ValueError, OSError):
            continue


def haproxy_maxconn():
    import resource
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return min(20000, (soft - 200) // 2)


def tool(name):
    return shutil.which(name) or f"/usr/sbin/{name}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


# ---------------------------------------------------------------- tokens

def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def make_keys(tmp):
    key = os.path.join(tmp, "rsa.pem")
    pub = os.path.join(tmp, "rsa.pub.pem")
    subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, capture_output=True)
    subprocess.run(["openssl", "rsa", "-in", key, "-pubout", "-out", pub], check=True, capture_output=True)
    secret = os.urandom(32).hex()  # 64 ASCII characters: the HMAC key on both sides
    return key, pub, secret


def claims(i):
    return {"sub": f"user-{i}", "iss": "https://auth.bench", "aud": "bench-api",
            "exp": int(time.time()) + 3600, "roles": ["user"], "scope": "tasks:read"}


def hs256_tokens(secret, n):
    out = []
    for i in range(n):
        h = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        p = b64url(json.dumps(claims(i)).encode())
        sig = hmac.new(secret.encode(), f"{h}.{p}".encode(), hashlib.sha256).digest()
        out.append(f"{h}.{p}.{b64url(sig)}")
    return out


def rs256_tokens(key_path, n):
    """Signs with the `cryptography` package if present, else openssl (slower)."""
    try:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding
        with open(key_path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
        sign = lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    except ImportError:
        def sign(data):
            return subprocess.run(["openssl", "dgst", "-sha256", "-sign", key_path], input=data,
                                  check=True, capture_output=True).stdout
    out = []
    for i in range(n):
        h = b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
        p = b64url(json.dumps(claims(i)).encode())
        out.append(f"{h}.{p}.{b64url(sign(f'{h}.{p}'.encode()))}")
    return out


def wrk_script(tmp, name, tokens):
    tok = os.path.join(tmp, f"{name}.tokens")
    with open(tok, "w") as f:
        f.write("\n".join(tokens) + "\n")
    lua = os.path.join(tmp, f"{name}.lua")
    with open(lua, "w") as f:
        f.write(f"""
local tokens = {{}}
for line in io.lines("{tok}") do tokens[#tokens + 1] = line end
local i = math.random(#tokens)
request = function()
  i = i % #tokens + 1
  return wrk.format("GET", "/api/bench", {{ ["Authorization"] = "Bearer " .. tokens[i] }})
end
""")
    return lua


# ---------------------------------------------------------------- servers

class Proc:
    def __init__(self, argv, cpu, cwd=None, env=None):
        self.argv = argv
        self.started = time.time()
        self.p = subprocess.Popen(["taskset", "-c", str(cpu), *argv], cwd=cwd, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)

    def pids(self):
        """The process and its children (nginx's worker)."""
        pids = [self.p.pid]
        try:
            out = subprocess.run(["pgrep", "-P", str(self.p.pid)], capture_output=True, text=True).stdout
            pids += [int(x) for x in out.split()]
        except OSError:
            pass
        return pids

    def cpu_split(self):
        """(user, kernel) CPU seconds of the process and its children."""
        user = kernel = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                user += int(fields[11])
                kernel += int(fields[12])
            except OSError:
                pass
        return user / HZ, kernel / HZ

    def switches(self):
        """(voluntary, involuntary) context switches of every thread of the
        process and its children: a voluntary one is the proxy waiting for
        work, an involuntary one is the scheduler taking the CPU away (here,
        mostly to the origin that shares it)."""
        vol = invol = 0
        for pid in self.pids():
            try:
                tids = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            for tid in tids:
                try:
                    with open(f"/proc/{pid}/task/{tid}/status") as f:
                        for line in f:
                            if line.startswith("voluntary_ctxt_switches:"):
                                vol += int(line.split()[1])
                            elif line.startswith("nonvoluntary_ctxt_switches:"):
                                invol += int(line.split()[1])
                except OSError:
                    pass
        return vol, invol

    def cpu_seconds(self):
        return sum(self.cpu_split())

    def rss_mib(self):
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
            except OSError:
                pass
        return total / 1024

    def stop(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGTERM)
                self.p.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def origin(tmp, ports):
    conf = os.path.join(tmp, "origin.conf")
    listens = "\n".join(f"    listen 127.0.0.1:{p} reuseport backlog=4096;" for p in ports)
    with open(os.path.join(tmp, "body"), "wb") as f:
        f.write(BODY)
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1; daemon off; pid {tmp}/origin.pid; error_log /dev/null crit;
events {{ worker_connections 4096; }}
http {{ access_log off; keepalive_requests 1000000;
  server {{
{listens}
    location / {{ default_type text/plain; return 200 "{BODY.decode().strip()}\\n"; }}
  }}
}}
""")
    return Proc([tool("nginx"), "-c", conf, "-p", tmp], cpu=0)


# The request headers gwanmun sets on every proxied request (and the request
# id it returns), for the "-fwd" candidates: nginx and HAProxy configured to
# do the same header work a gateway does (bare nginx and HAProxy set none).
NGINX_FWD = """proxy_set_header Host $http_host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Real-IP $remote_addr;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header X-Forwarded-Host $http_host;
    proxy_set_header X-Request-Id $request_id;
    add_header X-Request-Id $request_id;"""
HAPROXY_FWD = """  unique-id-format %[uuid()]
  unique-id-header X-Request-Id
  option forwardfor
  http-request set-header X-Real-IP %[src]
  http-request set-header X-Forwarded-Proto http
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  http-response set-header X-Request-Id %[unique-id]
"""


def nginx_proxy(tmp, port, ups, h2=False, fwd=False):
    conf = os.path.join(tmp, f"nginx-proxy{'-fwd' if fwd else ''}.conf")
    servers = "\n".join(f"    server 127.0.0.1:{p};" for p in ups)
    listen = f"listen 127.0.0.1:{port}{' http2' if h2 else ''} backlog=4096;"
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1; daemon off; pid {tmp}/nginx-proxy.pid; error_log /dev/null crit;
events {{ worker_connections 20000; }}
http {{ access_log off; keepalive_requests 1000000;
  upstream origin {{
{servers}
    keepalive 256;
  }}
  server {{
    {listen}
    location / {{ proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";
    {NGINX_FWD if fwd else ""} }}
  }}
}}
""")
    return Proc([tool("nginx"), "-c", conf, "-p", tmp], cpu=0)


def haproxy(tmp, port, ups, jwt=None, h2=False, fwd=False):
    conf = os.path.join(tmp, f"haproxy-{jwt[0] if jwt else 'plain'}{'-h2' if h2 else ''}{'-fwd' if fwd else ''}.cfg")
    servers = "\n".join(f"  server s{i} 127.0.0.1:{p}" for i, p in enumerate(ups))
    rules = ""
    if jwt:
        alg, key = jwt
        rules = f"""  http-request deny unless {{ req.hdr(authorization) -m found }}
  http-request set-var(txn.bearer) http_auth_bearer
  http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('$.alg')
  http-request deny unless {{ var(txn.alg) -m str {alg} }}
  http-request deny unless {{ var(txn.bearer),jwt_verify(txn.alg,"{key}") -m int 1 }}
  http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('$.exp','int')
  http-request set-var(txn.now) date()
  http-request deny if {{ var(txn.exp),sub(txn.now) -m int lt 0 }}
"""
    with open(conf, "w") as f:
        f.write(f"""global
  nbthread 1
  maxconn {haproxy_maxconn()}
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend fe
  bind 127.0.0.1:{port}{' proto h2' if h2 else ''}
{HAPROXY_FWD if fwd else ""}{rules}  default_backend be
backend be
  balance roundrobin
{servers}
""")
    return Proc([tool("haproxy"), "-f", conf], cpu=0)


def gwanmun(tmp, port, ups, auth=None, binary=None, routes=1):
    """`routes` > 1: that many routes in the trie (`/svcN/items/{id}` templates
    plus the `/api/**` route the load hits), for the config-scale cases."""
    conf = os.path.join(tmp, f"gwanmun-{'jwt' if auth else 'plain'}-{routes}.yaml")
    eps = ", ".join(f'"127.0.0.1:{p}"' for p in ups)
    with open(conf, "w") as f:
        f.write(f"""listeners: [{{ name: bench, bind: "127.0.0.1:{port}", max_connections: 20000 }}]
upstreams:
  origin: {{ endpoints: [{eps}] }}
routes:
""")
        for i in range(routes - 1):
            f.write(f"  - {{ id: r{i}, match: {{ path: \"/svc{i}/items/{{id}}\" }}, upstream: origin }}\n")
        f.write(f"  - {{ id: all, match: {{ path: {'/api/**' if routes > 1 else '/**'} }}, upstream: origin }}\n")
        if auth:
            f.write(auth)
    env = {**os.environ, "RUST_LOG": "warn"}
    binary = binary or os.path.join(ROOT, "target/release/gwanmun")
    return Proc([binary, "run", "-c", conf, "--log-format", "text",
                 "--threads", "1"],
                cpu=0, env=env)


# ---------------------------------------------------------------- load

def run_wrk(port, conns, seconds, script=None):
    argv = ["taskset", "-c", "1", tool("wrk"), "-t", "1", "-c", str(conns), "-d", f"{seconds}s",
            "--latency", f"http://127.0.0.1:{port}/api/bench"]
    if script:
        argv[4:4] = ["-s", script]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30).stdout
    res = {"requests": 0, "rps": 0.0, "p50_ms": None, "p99_ms": None, "errors": 0}
    for line in out.splitlines():
        parts = line.split()
        if "requests in" in line:
            res["requests"] = int(parts[0])
        elif line.startswith("Requests/sec:"):
            res["rps"] = float(parts[1])
        elif line.strip().startswith("50%"):
            res["p50_ms"] = to_ms(parts[1])
        elif line.strip().startswith("99%"):
            res["p99_ms"] = to_ms(parts[1])
        elif "Non-2xx" in line or "Socket errors" in line:
            res["errors"] += sum(int(x) for x in line.replace(",", " ").split() if x.isdigit())
    return res


def run_h2load(port, seconds):
    argv = ["taskset", "-c", "1", tool("h2load"), "-c", "64", "-m", "4", "-t", "1", "-D", str(seconds),
            f"http://127.0.0.1:{port}/api/bench"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30).stdout
    res = {"requests": 0, "rps": 0.0, "p50_ms": None, "p99_ms": None, "errors": 0}
    for line in out.splitlines():
        if line.startswith("finished in"):
            res["rps"] = float(line.split(",")[1].split()[0])
        elif line.startswith("requests:"):
            res["requests"] = int(line.split()[7])  # succeeded
    return res


def to_ms(v):
    for unit, mult in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if v.endswith(unit):
            return float(v[: -len(unit)]) * mult
    return None


def hold_idle(port, n, seconds):
    """Opens `n` keep-alive connections (256 at a time, 10 s each at most), one request each,
    and keeps them open; returns (connections that got their answer, the
    open connections to close later). Bounded by `seconds` + 60 s."""
    import asyncio
    import re
    req = b"GET /api/bench HTTP/1.1\r\nHost: bench\r\n\r\n"

    async def run():
        sem = asyncio.Semaphore(256)

        async def one():
            async with sem:
                return await asyncio.wait_for(exchange(), 10)

        async def exchange():
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(req)
            head = await r.readuntil(b"\r\n\r\n")
            m = re.search(rb"(?i)content-length:\s*(\d+)", head)
            await r.readexactly(int(m.group(1)) if m else 0)
            return w

        got = await asyncio.wait_for(asyncio.gather(*[one() for _ in range(n)], return_exceptions=True),
                                     seconds + 60)
        return [w for w in got if not isinstance(w, BaseException)]

    loop = asyncio.new_event_loop()
    try:
        writers = loop.run_until_complete(run())
    except asyncio.TimeoutError:
        writers = []
    return len(writers), (loop, writers)


def close_idle(held):
    loop, writers = held
    for w in writers:
        w.close()
    loop.close()


def measure(proc, port, conns, seconds, script=None, kind="h1", origin_proc=None):
    try:
        wait_port(port)
    except RuntimeError:
        err = proc.p.stderr.read().decode(errors="replace") if proc.p.poll() is not None else ""
        raise RuntimeError(f"{' '.join(proc.argv)} did not start: {err[-2000:]}")
    start_ms = (time.time() - proc.started) * 1000 if hasattr(proc, "started") else None
    idle = proc.rss_mib()
    user0, kernel0 = proc.cpu_split()
    vol0, invol0 = proc.switches()
    ovol0, _ = origin_proc.switches() if origin_proc else (0, 0)
    if kind == "idle":
        # The client runs on CPU 1 like the load generators.
        mask = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {1})
        try:
            ok, held = hold_idle(port, conns, seconds)
            time.sleep(0.5)  # let the proxy settle before reading its RSS
            res = {"requests": ok, "rps": None, "p50_ms": None, "p99_ms": None, "errors": conns - ok}
            res["rss_load_mib"] = proc.rss_mib()
            close_idle(held)
        finally:
            os.sched_setaffinity(0, mask)
    else:
        res = run_h2load(port, seconds) if kind == "h2" else run_wrk(port, conns, seconds, script)
        res["rss_load_mib"] = proc.rss_mib()
    user1, kernel1 = proc.cpu_split()
    vol1, invol1 = proc.switches()
    ovol1, _ = origin_proc.switches() if origin_proc else (0, 0)
    n = max(res["requests"], 1)
    res["cpu_us_per_req"] = (user1 - user0 + kernel1 - kernel0) * 1e6 / n
    # The split shows where a gap is: loopback TCP (kernel) costs every
    # proxy about the same; user space is the proxy's own code.
    res["user_us_per_req"] = (user1 - user0) * 1e6 / n
    res["kernel_us_per_req"] = (kernel1 - kernel0) * 1e6 / n
    # Wake-ups per request: a switch costs a few microseconds of CPU (the
    # kernel's scheduler and cold caches after it), so it is counted apart.
    res["switches_per_req"] = (vol1 - vol0 + invol1 - invol0) / n
    res["involuntary_per_req"] = (invol1 - invol0) / n
    # The origin sleeps when it has answered everything queued: its
    # voluntary switches are how often it was woken.
    res["origin_wakeups_per_req"] = (ovol1 - ovol0) / n if origin_proc else None
    res["rss_idle_mib"] = idle
    res["start_ms"] = start_ms
    return res


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=10, help="length of one measurement")
    ap.add_argument("--rounds", type=int, default=3,
                    help="interleaved rounds (3: a median that one noisy round cannot move)")
    ap.add_argument("--quick", action="store_true", help="3 s, 1 round")
    ap.add_argument("--only", default="", help="comma list of candidate names")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench/results/latest.json"))
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--pgo", action="store_true",
                    help="also build gwanmun with profile-guided optimization (bench/pgo.py) and run it as "
                         "'gwanmun-pgo' (every gwanmun case) in the same rounds")
    ap.add_argument("--baseline-bin", action="append", default=[],
                    help="another gwanmun binary, run as candidate 'gwanmun-baseN' (plain, idle and h2 "
                         "cases) in the same rounds: what a change bought; repeatable")
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.rounds = 3, 1

    ensure_tools()
    raise_fd_limit()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--bin", "gwanmun"], cwd=ROOT, check=True)
    pgo_bin = None
    if args.pgo:
        pgo_bin = os.path.join(ROOT, "target/release/gwanmun-pgo")
        if not args.no_build or not os.path.exists(pgo_bin):
            subprocess.run([sys.executable, os.path.join(ROOT, "bench/pgo.py")], cwd=ROOT, check=True)

    tmp = tempfile.mkdtemp(prefix="gwanmun-bench-")
    procs = []
    try:
        ups = [free_port() for _ in range(3)]
        procs.append(origin(tmp, ups))
        for p in ups:
            wait_port(p)
        key, pub, secret = make_keys(tmp)
        n_tokens = 10_000  # 10x gwanmun's GW_TOKEN_CACHE: "many tokens" verifies cold
        log("minting tokens")
        rs = rs256_tokens(key, n_tokens)
        hs = hs256_tokens(secret, n_tokens)
        scripts = {
            "rs_one": wrk_script(tmp, "rs_one", rs[:1]), "rs_many": wrk_script(tmp, "rs_many", rs),
            "hs_one": wrk_script(tmp, "hs_one", hs[:1]), "hs_many": wrk_script(tmp, "hs_many", hs),
        }
        gw_auth = gwanmun_auth_config(pub, secret, tmp)

        # name -> (starter(port), [(case, conns, script, h2)])
        plain_cases = [("c64", 64, None, "h1"), ("c256", 256, None, "h1")]
        # 10,000 keep-alive client connections held idle: RSS while they are open.
        idle_cases = [("idle-10k", 10_000, None, "idle")]
        candidates = {
            "direct": (None, plain_cases),
            "nginx": (lambda port: nginx_proxy(tmp, port, ups), plain_cases + idle_cases),
            "haproxy": (lambda port: haproxy(tmp, port, ups), plain_cases + idle_cases),
            # The same header work as gwanmun's (X-Forwarded-For/-Proto/-Host, X-Real-IP,
            # X-Request-Id on the request and the response).
            "nginx-fwd": (lambda port: nginx_proxy(tmp, port, ups, fwd=True), plain_cases),
            "haproxy-fwd": (lambda port: haproxy(tmp, port, ups, fwd=True), plain_cases),
            # The JWT cases send their token from a wrk Lua script, which costs the load
            # generator too: "same-script-c64" is the plain route under the same script,
            # the fair baseline for the JWT ratios.
            # Config scale: the same route hit behind 10 and behind 10,000 routes.
            "gwanmun-10-routes": (lambda port: gwanmun(tmp, port, ups, routes=10), [("c64", 64, None, "h1")]),
            "gwanmun-10k-routes": (lambda port: gwanmun(tmp, port, ups, routes=10_000),
                                   [("c64", 64, None, "h1")]),
            "haproxy-jwt-rs256": (lambda port: haproxy(tmp, port, ups, jwt=("RS256", pub)),
                                  [("one-token-c64", 64, scripts["rs_one"], "h1"),
                                   ("many-tokens-c64", 64, scripts["rs_many"], "h1")]),
            "haproxy-jwt-hs256": (lambda port: haproxy(tmp, port, ups, jwt=("HS256", secret)),
                                  [("many-tokens-c64", 64, scripts["hs_many"], "h1")]),
            "nginx-h2": (lambda port: nginx_proxy(tmp, port, ups, h2=True), [("h2-c64x4", 64, None, "h2")]),
            "haproxy-h2": (lambda port: haproxy(tmp, port, ups, h2=True), [("h2-c64x4", 64, None, "h2")]),
        }
        # gwanmun itself: the plain build, and with --pgo the profile-guided one
        # (bench/pgo.py) under its own names in the same rounds.
        builds = [("gwanmun", None)] + ([("gwanmun-pgo", pgo_bin)] if pgo_bin else [])
        for name, binary in builds:
            candidates[name] = (lambda port, b=binary: gwanmun(tmp, port, ups, binary=b),
                                plain_cases + [("same-script-c64", 64, scripts["rs_one"], "h1")] + idle_cases)
            candidates[f"{name}-h2"] = (lambda port, b=binary: gwanmun(tmp, port, ups, binary=b),
                                        [("h2-c64x4", 64, None, "h2")])
        for i, binary in enumerate(args.baseline_bin, 1):
            candidates[f"gwanmun-base{i}"] = (lambda port, b=binary: gwanmun(tmp, port, ups, binary=b),
                                              plain_cases + idle_cases + [("h2-c64x4", 64, None, "h2")])
            if gw_auth is not None:
                candidates[f"gwanmun-base{i}-jwt"] = (
                    lambda port, b=binary: gwanmun(tmp, port, ups, auth=gw_auth, binary=b),
                    [("rs256-one-token-c64", 64, scripts["rs_one"], "h1"),
                     ("rs256-many-tokens-c64", 64, scripts["rs_many"], "h1"),
                     ("hs256-many-tokens-c64", 64, scripts["hs_many"], "h1")])
        for name, binary in builds:
            candidates[f"{name}-jwt-rs256"] = (lambda port, b=binary: gwanmun(tmp, port, ups, auth=gw_auth, binary=b),
                                               [("one-token-c64", 64, scripts["rs_one"], "h1"),
                                                ("many-tokens-c64", 64, scripts["rs_many"], "h1")])
            candidates[f"{name}-jwt-hs256"] = (lambda port, b=binary: gwanmun(tmp, port, ups, auth=gw_auth, binary=b),
                                               [("many-tokens-c64", 64, scripts["hs_many"], "h1")])
        if args.only:
            keep = set(args.only.split(","))
            candidates = {k: v for k, v in candidates.items() if k in keep}

        results = {}
        for rnd in range(args.rounds):
            for name, (start, cases) in candidates.items():
                for case, conns, script, kind in cases:
                    port = ups[0] if start is None else free_port()
                    proc = procs[0] if start is None else start(port)
                    try:
                        log(f"round {rnd + 1}: {name} {case}")
                        r = measure(proc, port, conns, args.seconds, script, kind,
                                    origin_proc=None if start is None else procs[0])
                        if start is None:
                            r["start_ms"] = None  # the shared origin, started long before
                    finally:
                        if start is not None:
                            proc.stop()
                    results.setdefault(f"{name}/{case}", []).append(r)
        report(results, args.out)
    finally:
        for p in procs:
            p.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# gwanmun's verified-token cache (auth.cache_size), kept 10x smaller than the
# token pool: the pool is walked in order, so a token comes back only after
# 10,000 requests; a token is cached on its second verification, and the
# 1,024-slot table of first verifications has forgotten it by then, so no
# request finds its token cached (HAProxy has no such cache). The default
# cache (10,000 entries) would hold the whole pool and turn "many tokens"
# into a cached case.
GW_TOKEN_CACHE = 1000


def gwanmun_auth_config(pub, secret, tmp):
    """The same checks as the HAProxy jwt_verify candidates: signature with the
    algorithm pinned, exp checked (plus iss and aud, which HAProxy skips)."""
    return f"""auth:
  default: required
  cache_size: {GW_TOKEN_CACHE}
  providers:
    - name: bench
      issuer: https://auth.bench
      audiences: [bench-api]
      algorithms: [RS256, HS256]
      public_key_pem: {pub}
      secret: "{secret}"
"""


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def report(results, out):
    summary = {}
    for key, runs in results.items():
        summary[key] = {k: median([r[k] for r in runs]) for k in runs[0]}
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump({"machine": os.uname().nodename, "cpus": os.cpu_count(), "results": summary,
                   "runs": results}, f, indent=2)
    def ratio(key, base):
        a, b = summary.get(key, {}).get("rps"), summary.get(base, {}).get("rps")
        return f"{a / b:.2f}" if a and b else "-"
    print(f"{'candidate/case':34} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'cpu us/req':>10} {'user':>5} {'kern':>5} "
          f"{'cs/req':>6} {'rss idle':>8} {'rss load':>8} {'start ms':>8} {'vs nginx':>8} {'vs haproxy':>10} {'vs ng-fwd':>9} {'vs hap-fwd':>11}")
    for key, s in summary.items():
        case = key.split("/", 1)[1]
        base_case = case if case in ("c64", "c256", "h2-c64x4") else "c64"
        nginx_key = f"nginx{'-h2' if case.startswith('h2') else ''}/{base_case}"
        haproxy_key = f"haproxy{'-h2' if case.startswith('h2') else ''}/{base_case}"
        fmt = lambda v, spec: format(v, spec) if v is not None else format("-", ">" + spec.split(".")[0])
        print(f"{key:34} {fmt(s['rps'], '9.0f')} {fmt(s['p50_ms'], '7.2f')} {fmt(s['p99_ms'], '7.2f')} "
              f"{fmt(s['cpu_us_per_req'], '10.1f')} {fmt(s.get('user_us_per_req'), '5.1f')} {fmt(s.get('kernel_us_per_req'), '5.1f')} {fmt(s.get('switches_per_req'), '6.2f')} {fmt(s['rss_idle_mib'], '8.1f')} {fmt(s['rss_load_mib'], '8.1f')} "
              f"{fmt(s.get('start_ms'), '8.0f')} {ratio(key, nginx_key):>8} {ratio(key, haproxy_key):>10} "
              f"{ratio(key, 'nginx-fwd/' + base_case):>9} {ratio(key, 'haproxy-fwd/' + base_case):>11}")
    paired = round_ratios(results)
    if paired:
        print("\nThe issue's ratios, taken within each round (both sides measured minutes apart, so"
              "\ndrift between rounds cancels) - median [lowest, highest] over the rounds:")
        for label, (med, lo, hi) in paired.items():
            print(f"  {label:58} {med:5.2f}  [{lo:.2f}, {hi:.2f}]")
    print(f"\nJSON: {out}")


# (label, numerator key, denominator key): the ratios the issue's targets are stated in.
TARGET_RATIOS = [
    ("plain c64 vs nginx (target >= 1.1)", "gwanmun/c64", "nginx/c64"),
    ("plain c256 vs nginx (target >= 1.1)", "gwanmun/c256", "nginx/c256"),
    ("plain c64 vs HAProxy (target >= 1.0)", "gwanmun/c64", "haproxy/c64"),
    ("plain c256 vs HAProxy (target >= 1.0)", "gwanmun/c256", "haproxy/c256"),
    ("plain c64 vs nginx-fwd", "gwanmun/c64", "nginx-fwd/c64"),
    ("plain c64 vs haproxy-fwd", "gwanmun/c64", "haproxy-fwd/c64"),
    ("RS256 one token vs HAProxy RS256 (target >= 2)", "gwanmun-jwt-rs256/one-token-c64",
     "haproxy-jwt-rs256/one-token-c64"),
    ("RS256 one token vs same-script plain (target >= 0.9)", "gwanmun-jwt-rs256/one-token-c64",
     "gwanmun/same-script-c64"),
    ("RS256 distinct vs HAProxy RS256 (target >= 1.3)", "gwanmun-jwt-rs256/many-tokens-c64",
     "haproxy-jwt-rs256/many-tokens-c64"),
    ("HS256 distinct vs same-script plain (target >= 0.9)", "gwanmun-jwt-hs256/many-tokens-c64",
     "gwanmun/same-script-c64"),
    ("HTTP/2 vs HAProxy (target >= 1.1)", "gwanmun-h2/h2-c64x4", "haproxy-h2/h2-c64x4"),
]


def round_ratios(results):
    """Per-round req/s ratios for TARGET_RATIOS (and CPU per request against
    nginx), as label -> (median, lowest, highest), for the pairs that ran."""
    out = {}
    pairs = TARGET_RATIOS + [("CPU per request c64 vs nginx (target <= 0.9)", "gwanmun/c64", "nginx/c64")]
    # The same ratios for the profile-guided build, against its own plain figure
    # where the target is stated against gwanmun's plain one.
    pairs += [(f"[pgo] {label}", "gwanmun-pgo" + a[len("gwanmun"):],
               "gwanmun-pgo" + b[len("gwanmun"):] if b.startswith("gwanmun/") else b)
              for label, a, b in pairs]
    for label, a, b in pairs:
        field = "cpu_us_per_req" if "CPU per request" in label else "rps"
        ra, rb = results.get(a, []), results.get(b, [])
        xs = [x[field] / y[field] for x, y in zip(ra, rb) if x.get(field) and y.get(field)]
        if xs:
            out[label] = (median(xs), min(xs), max(xs))
    return out


if __name__ == "__main__":
    main()
