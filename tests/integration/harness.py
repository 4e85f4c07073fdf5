"""Shared helpers of the integration suites: start/stop a real `bespoke serve`
on 127.0.0.1 with a fresh data directory, send requests, and run the test_*
functions of a suite, ending with the one line run-all.sh reads:
"N passed, N failed".

Python 3 standard library only. Every suite takes the bespoke binary as argv[1].
"""

import atexit
import base64
import gzip
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

WRITE_KEY = "wk_test"
ADMIN_KEY = "ak_test"

SANITIZED = os.environ.get("BESPOKE_SANITIZED") == "1"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_temp_dirs = []
_live = []  # servers started, killed at exit if a suite dies before stopping them


def _kill_leftovers():
    for s in _live:
        if s.proc is not None and s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()


atexit.register(_kill_leftovers)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def temp_dir(prefix="bespoke-it-"):
    d = tempfile.mkdtemp(prefix=prefix)
    _temp_dirs.append(d)
    return d


def cleanup_temp_dirs():
    while _temp_dirs:
        shutil.rmtree(_temp_dirs.pop(), ignore_errors=True)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # dict, lower-case names
        self.body = body
        try:
            self.json = json.loads(body.decode("utf-8")) if body else None
        except (ValueError, UnicodeDecodeError):
            self.json = None

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        text = self.body[:400].decode("utf-8", "replace")
        return "HTTP %d %s" % (self.status, text)


def basic_auth(key):
    return "Basic " + base64.b64encode((key + ":").encode()).decode()


class Server:
    """A `bespoke serve` child process."""

    def __init__(self, binary, data_dir=None, write_key=WRITE_KEY, admin_key=ADMIN_KEY,
                 extra_args=(), env=None, keys_as_flags=True, addr_as_flags=True,
                 preexec_fn=None):
        self.binary = binary
        self.data_dir = data_dir or temp_dir()
        self.write_key = write_key
        self.admin_key = admin_key
        self.extra_args = list(extra_args)
        self.env = env
        self.keys_as_flags = keys_as_flags
        self.addr_as_flags = addr_as_flags
        self.preexec_fn = preexec_fn  # run in the child before exec (limits)
        self.port = None
        self.proc = None
        self.log_path = None
        self.exit_code = None

    def start(self, timeout=60):
        self.port = free_port()
        # the suite's own settings only: no BESPOKE_* from the caller's shell
        env = {k: v for k, v in os.environ.items() if not k.startswith("BESPOKE_")}
        args = [self.binary, "serve"]
        if self.addr_as_flags:
            args += ["--listen", "127.0.0.1:%d" % self.port, "--data", self.data_dir]
        else:
            env["BESPOKE_LISTEN"] = "127.0.0.1:%d" % self.port
            env["BESPOKE_DATA"] = self.data_dir
        for flag, var, val in (("--write-key", "BESPOKE_WRITE_KEY", self.write_key),
                               ("--admin-key", "BESPOKE_ADMIN_KEY", self.admin_key)):
            if val is None:
                continue
            if self.keys_as_flags:
                args += [flag, val]
            else:
                env[var] = val
        args += self.extra_args
        logdir = temp_dir("bespoke-log-")
        self.log_path = os.path.join(logdir, "server.log")
        log = open(self.log_path, "wb")
        if self.env:
            env.update(self.env)
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env,
                                     stdin=subprocess.DEVNULL, preexec_fn=self.preexec_fn)
        log.close()
        _live.append(self)
        self.exit_code = None
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("server exited with %s during start-up; log:\n%s"
                                     % (self.proc.returncode, self.log_tail()))
            try:
                r = self.request("GET", "/healthz", timeout=2)
                if r.status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.kill()
        raise AssertionError("server did not answer /healthz in %d s; log:\n%s"
                             % (timeout, self.log_tail()))

    def log_tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            return "\n".join(lines[-n:])
        except OSError:
            return "(no log)"

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=60):
        """SIGTERM, wait; returns the exit code (SIGKILL after timeout -> -9)."""
        if self.proc is None:
            return self.exit_code
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.exit_code = self.proc.returncode
        self.proc = None
        return self.exit_code

    def kill(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.exit_code = self.proc.returncode
        self.proc = None

    # -- requests ---------------------------------------------------------
    def request(self, method, path, body=None, headers=None, timeout=60):
        """body: dict/list (sent as JSON), str or bytes (sent as is)."""
        hdrs = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            headers = {k.lower(): v for k, v in resp.getheaders()}
            return Response(resp.status, headers, data)
        finally:
            conn.close()

    def raw_request(self, method, path, body, headers=None, timeout=60):
        """Sends the whole request over a socket even if the server answers
        early and closes (413 on a huge upload), then reads the answer."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        hdrs = {"Host": "127.0.0.1:%d" % self.port, "Content-Length": str(len(body)),
                "Connection": "close"}
        hdrs.update(headers or {})
        head = "%s %s HTTP/1.1\r\n" % (method, path)
        head += "".join("%s: %s\r\n" % kv for kv in hdrs.items()) + "\r\n"
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        data = b""
        try:
            try:
                s.sendall(head.encode() + body)
            except (BrokenPipeError, ConnectionResetError):
                pass
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except ConnectionResetError:
                pass
        finally:
            s.close()
        if not data:
            raise AssertionError("%s %s: connection closed without an answer" % (method, path))
        head, _, rest = data.partition(b"\r\n\r\n")
        while head.startswith(b"HTTP/1.1 1") and rest:  # 100 Continue and friends
            head, _, rest = rest.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        code = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            out = b""
            while rest:
                size_line, _, rest = rest.partition(b"\r\n")
                n = int(size_line.split(b";")[0], 16)
                if n == 0:
                    break
                out += rest[:n]
                rest = rest[n + 2:]
            rest = out
        elif "content-length" in headers:
            rest = rest[:int(headers["content-length"])]
        return Response(code, headers, rest)

    def collect(self, path, body, key=None, headers=None):
        """A collection call with the write key in Basic auth."""
        hdrs = {"Authorization": basic_auth(self.write_key if key is None else key)}
        hdrs.update(headers or {})
        return self.request("POST", path, body, hdrs)

    def admin(self, method, path, body=None, key=None, headers=None):
        hdrs = {"Authorization": "Bearer " + (self.admin_key if key is None else key)}
        hdrs.update(headers or {})
        return self.request(method, path, body, hdrs)

    def stats(self):
        r = self.admin("GET", "/v1/admin/stats")
        assert r.status == 200, "stats: %r" % r
        return r.json

    def profile(self, pid):
        return self.admin("GET", "/v1/admin/profiles/" + quote(pid))

    def all_events(self, pid, limit=1000):
        """Every event of a profile, newest first, following next_cursor."""
        out = []
        cursor = None
        for _ in range(100000):
            path = "/v1/admin/profiles/%s/events?limit=%d" % (quote(pid), limit)
            if cursor is not None:
                path += "&cursor=" + quote(str(cursor))
            r = self.admin("GET", path)
            assert r.status == 200, "events of %s: %r" % (pid, r)
            out.extend(r.json["events"])
            cursor = r.json.get("next_cursor")
            if cursor is None:
                return out
        raise AssertionError("events pagination of %s does not end" % pid)


def quote(s):
    from urllib.parse import quote as q
    return q(s, safe="")


def gzip_bytes(data):
    if isinstance(data, (dict, list)):
        data = json.dumps(data).encode()
    return gzip.compress(data)


# -- assertions -----------------------------------------------------------
def eq(got, want, what=""):
    if got != want:
        raise AssertionError("%s: expected %r, got %r" % (what or "value", want, got))


def status(resp, want, what=""):
    if resp.status != want:
        raise AssertionError("%s: expected HTTP %d, got %r" % (what or "status", want, resp))


def error(resp, want_status, code, at=None, what=""):
    """An error answer: status, JSON {"error":{"code","message","at"}}."""
    status(resp, want_status, what)
    j = resp.json
    assert isinstance(j, dict) and isinstance(j.get("error"), dict), \
        "%s: error body is not {\"error\":{...}}: %r" % (what, resp)
    e = j["error"]
    eq(e.get("code"), code, "%s error.code" % what)
    assert isinstance(e.get("message"), str) and e["message"], \
        "%s: error.message missing or empty: %r" % (what, resp)
    assert "at" in e, "%s: error.at missing: %r" % (what, resp)
    if at is not None:
        eq(e.get("at"), at, "%s error.at" % what)
    return e


def success(resp, what=""):
    status(resp, 200, what)
    assert isinstance(resp.json, dict) and resp.json.get("success") is True, \
        "%s: expected {\"success\":true}, got %r" % (what, resp)


def close_money(got, want, what="", tol=0.005):
    if not isinstance(got, (int, float)) or abs(got - want) >= tol:
        raise AssertionError("%s: expected %.4f, got %r" % (what or "amount", want, got))


class Skip(Exception):
    """Raised by a test that cannot run here (missing data); counted as skipped."""


# -- the test registry ----------------------------------------------------
def run(namespace, setup=None, teardown=None, name=None):
    """Runs every function named test_* in namespace (in definition order).
    setup() runs first (a failure fails every test); teardown() runs at the
    end even after failures and may raise AssertionError, counted as one more
    failed check. Prints failures and "N passed, N failed"; exits 1 if any
    failed."""
    tests = [(k, v) for k, v in namespace.items()
             if k.startswith("test_") and callable(v)]
    passed = failed = skipped = 0
    suite = name or os.path.basename(sys.argv[0])
    t0 = time.time()
    try:
        setup_error = None
        if setup:
            try:
                setup()
            except Exception:  # noqa: BLE001 - reported below
                setup_error = traceback.format_exc()
        for tname, fn in tests:
            if setup_error:
                failed += 1
                print("FAIL %s: setup failed" % tname)
                continue
            start = time.time()
            try:
                fn()
                passed += 1
                print("ok   %s (%.2f s)" % (tname, time.time() - start))
            except Skip as e:
                skipped += 1
                print("SKIP %s: %s" % (tname, e))
            except AssertionError as e:
                failed += 1
                print("FAIL %s: %s" % (tname, e))
            except Exception:  # noqa: BLE001
                failed += 1
                print("FAIL %s: exception\n%s" % (tname, traceback.format_exc()))
            sys.stdout.flush()
        if setup_error:
            print("setup failed:\n" + setup_error)
    finally:
        if teardown:
            try:
                teardown()
                print("ok   teardown (servers stopped with exit code 0)")
            except AssertionError as e:
                failed += 1
                print("FAIL teardown: %s" % e)
            except Exception:  # noqa: BLE001
                failed += 1
                print("FAIL teardown: exception\n%s" % traceback.format_exc())
        cleanup_temp_dirs()
    print("# %s took %.1f s" % (suite, time.time() - t0))
    if skipped:
        print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    else:
        print("%d passed, %d failed" % (passed, failed))
    sys.stdout.flush()
    sys.exit(1 if failed else 0)


def binary_from_argv():
    if len(sys.argv) < 2:
        print("usage: %s PATH/TO/bespoke" % sys.argv[0])
        print("0 passed, 1 failed")
        sys.exit(2)
    b = os.path.abspath(sys.argv[1])
    if not os.access(b, os.X_OK):
        print("not an executable: %s" % b)
        print("0 passed, 1 failed")
        sys.exit(2)
    return b


def stop_all(servers):
    """Stops every server; raises AssertionError naming those that did not
    exit 0 on SIGTERM (with their log tail)."""
    problems = []
    for s in servers:
        if s.proc is None:
            continue
        code = s.stop()
        if code != 0:
            problems.append("server on port %s exited with %s on SIGTERM; log:\n%s"
                            % (s.port, code, s.log_tail()))
    if problems:
        raise AssertionError("\n".join(problems))
