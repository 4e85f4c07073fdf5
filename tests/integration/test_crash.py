#!/usr/bin/env python3
"""Nothing acknowledged is lost on kill -9. Four client threads stream batches
of 50 events (unique messageIds, distinct userIds per thread) and record every
batch answered 200; the server is killed with SIGKILL mid-stream, restarted on
the same data directory, and every acknowledged messageId must be in its
user's timeline, none twice, with profile counters matching the timelines.
Then every batch that was not acknowledged is resent: afterwards each
messageId ever sent is stored exactly once. Two crash rounds (the second with
--wal-sync 5ms: answered once written, synced later, which a killed process
must not lose either) and a SIGTERM under load. Then the stop itself: SIGTERM refuses new connections at once and
still answers a request already begun; and a server out of descriptors keeps
clients waiting in the backlog instead of failing them.
Usage: test_crash.py PATH/TO/bespoke"""

import http.client
import json
import os
import resource
import signal
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

BIN = h.binary_from_argv()
THREADS = 4
USERS_PER_THREAD = 5
BATCH = 50
STREAM_SECONDS = 1.5
SERVERS = []
STATE = {"server": None, "acked": {}, "unacked": {}, "round": 0}


def setup():
    s = h.Server(BIN).start()
    SERVERS.append(s)
    STATE["server"] = s
    STATE["data"] = s.data_dir


def teardown():
    h.stop_all(SERVERS)


def user_of(t, k):
    return "crash-t%d-u%d" % (t, k)


def make_batch(rnd, t, b):
    base = 1704067200000 + (rnd * 1000000 + b) * 1000  # 2024-01-01, one second a batch
    msgs = []
    for i in range(BATCH):
        k = (b + i) % USERS_PER_THREAD
        msgs.append({"type": "track", "userId": user_of(t, k), "event": "Product Viewed",
                     "messageId": "crash-r%d-t%d-b%d-i%d" % (rnd, t, b, i),
                     "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(
                         (base + i) // 1000)) + ".%03dZ" % ((base + i) % 1000),
                     "properties": {"product_id": "p%d" % (i % 7), "n": i}})
    return {"batch": msgs}


def client(port, rnd, t, stop, acked, unacked, lock):
    conn = None
    b = 0
    while not stop.is_set():
        body = make_batch(rnd, t, b)
        key = (rnd, t, b)
        b += 1
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", "/v1/batch", json.dumps(body),
                         {"Authorization": h.basic_auth(h.WRITE_KEY),
                          "Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
            ok = r.status == 200 and json.loads(data).get("success") is True
        except (OSError, http.client.HTTPException, ValueError):
            ok = False
            conn = None
        with lock:
            (acked if ok else unacked)[key] = body
        if not ok:
            # the server is gone (or refused): this batch stays unacknowledged
            if stop.wait(0.05):
                break
    if conn is not None:
        conn.close()


def stream_and_kill(rnd, sig=signal.SIGKILL, next_args=()):
    """Streams, stops the server with sig, starts the next on the same data
    (with next_args)."""
    s = STATE["server"]
    stop = threading.Event()
    lock = threading.Lock()
    acked, unacked = {}, {}
    threads = [threading.Thread(target=client, args=(s.port, rnd, t, stop, acked, unacked, lock))
               for t in range(THREADS)]
    for th in threads:
        th.start()
    deadline = time.time() + 30
    t0 = time.time()
    # at least STREAM_SECONDS and a few acknowledged batches
    while time.time() < deadline:
        with lock:
            n = len(acked)
        if time.time() - t0 >= STREAM_SECONDS and n >= THREADS * 2:
            break
        time.sleep(0.02)
    s.proc.send_signal(sig)
    try:
        s.proc.wait(60)
    except Exception:  # noqa: BLE001 - did not stop: kill it, report below
        s.proc.kill()
        s.proc.wait()
    killed_code = s.proc.returncode
    s.proc = None
    stop.set()
    for th in threads:
        th.join(60)
    if sig == signal.SIGKILL:
        h.eq(killed_code, -signal.SIGKILL, "the server died of SIGKILL")
    else:
        h.eq(killed_code, 0, "exit code on SIGTERM under load; log:\n" + s.log_tail())
    assert acked, "no batch was acknowledged before the kill; log:\n" + s.log_tail()
    STATE["acked"].update(acked)
    STATE["unacked"].update(unacked)
    print("# round %d: %d batches acknowledged, %d not, before %s"
          % (rnd, len(acked), len(unacked), "kill -9" if sig == signal.SIGKILL else "SIGTERM"))
    s2 = h.Server(BIN, data_dir=STATE["data"], extra_args=next_args).start()
    SERVERS.append(s2)
    STATE["server"] = s2


def stored_ids(s):
    """{user: [messageId, ...]} from every crash user's timeline."""
    out = {}
    for t in range(THREADS):
        for k in range(USERS_PER_THREAD):
            u = user_of(t, k)
            r = s.profile(u)
            if r.status == 404:
                out[u] = []
                continue
            h.status(r, 200, "profile %s" % u)
            out[u] = [e["messageId"] for e in s.all_events(u)]
    return out


def ids_of(batches):
    return {m["messageId"] for body in batches.values() for m in body["batch"]}


def check_consistent(s, what):
    """No duplicates; counters agree with timelines and stats."""
    stored = stored_ids(s)
    total = 0
    for u, mids in stored.items():
        assert len(mids) == len(set(mids)), "%s: %s has duplicated events" % (what, u)
        total += len(mids)
        if mids:
            c = s.profile(u).json["computed"]
            h.eq(c["product_views"], len(mids), "%s: product_views of %s == its events"
                 % (what, u))
    h.eq(s.stats()["events"], total, "%s: stats.events == events in timelines" % what)
    return {m for mids in stored.values() for m in mids}


def test_round_1_acknowledged_survive_kill9():
    stream_and_kill(1, next_args=["--wal-sync", "5ms"])
    present = check_consistent(STATE["server"], "after kill -9 #1")
    missing = ids_of(STATE["acked"]) - present
    assert not missing, "%d acknowledged events lost, e.g. %s" % (len(missing),
                                                                  sorted(missing)[:5])


def test_round_2_acknowledged_survive_kill9():
    """This server answers once written (--wal-sync 5ms)."""
    assert "--wal-sync 5ms" in STATE["server"].log_tail(), STATE["server"].log_tail()
    stream_and_kill(2)
    present = check_consistent(STATE["server"], "after kill -9 #2")
    missing = ids_of(STATE["acked"]) - present
    assert not missing, "%d acknowledged events lost, e.g. %s" % (len(missing),
                                                                  sorted(missing)[:5])


def test_round_3_sigterm_under_load_drains():
    stream_and_kill(3, signal.SIGTERM)
    present = check_consistent(STATE["server"], "after SIGTERM under load")
    missing = ids_of(STATE["acked"]) - present
    assert not missing, "%d acknowledged events lost, e.g. %s" % (len(missing),
                                                                  sorted(missing)[:5])


def test_resend_unacknowledged_no_duplicates():
    s = STATE["server"]
    # resend every unacknowledged batch, and a few acknowledged ones too
    resend = list(STATE["unacked"].values()) + list(STATE["acked"].values())[:5]
    for body in resend:
        r = s.collect("/v1/batch", body)
        h.success(r, "resend")
    everything = ids_of(STATE["acked"]) | ids_of(STATE["unacked"])
    present = check_consistent(s, "after resending")
    h.eq(len(present), len(everything), "distinct stored == distinct sent")
    h.eq(present, everything, "stored messageIds == sent messageIds")
    h.eq(s.stats()["events"], len(everything), "stats.events")


def test_clean_stop_after_crashes():
    s = STATE["server"]
    before = s.stats()
    code = s.stop()
    h.eq(code, 0, "SIGTERM exit code; log:\n" + s.log_tail())
    s2 = h.Server(BIN, data_dir=STATE["data"]).start()
    SERVERS.append(s2)
    STATE["server"] = s2
    h.eq(s2.stats(), before, "stats after a clean restart")


def read_all(sock):
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def connection_refused(port, seconds):
    """True once a connection attempt is refused within `seconds`."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        except ConnectionRefusedError:
            return True
        except ConnectionResetError:
            pass  # it reached the backlog as the socket closed: try again
        time.sleep(0.01)
    return False


def test_sigterm_refuses_new_connections_and_answers_the_open_request():
    """A request has begun (its 100 Continue came back) when SIGTERM arrives:
    new connections are refused at once, the begun request still gets its
    answer (503: ingest no longer takes work), and the server exits 0."""
    s = h.Server(BIN).start()
    SERVERS.append(s)
    body = json.dumps({"type": "track", "userId": "drain-u1", "event": "Drain Test"}).encode()
    head = ("POST /v1/track HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: %s\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n"
            "Expect: 100-continue\r\nConnection: close\r\n\r\n"
            % (s.port, h.basic_auth(s.write_key), len(body)))
    conn = socket.create_connection(("127.0.0.1", s.port), timeout=30)
    try:
        conn.sendall(head.encode())
        h.eq(conn.recv(64).split(b"\r\n")[0], b"HTTP/1.1 100 Continue", "the request began")
        s.proc.send_signal(signal.SIGTERM)
        assert connection_refused(s.port, 10), \
            "connections still accepted after SIGTERM; log:\n" + s.log_tail()
        h.eq(s.proc.poll(), None, "the server waits for the begun request")
        conn.sendall(body)
        answer = read_all(conn)
    finally:
        conn.close()
    h.eq(answer.split(b"\r\n")[0], b"HTTP/1.1 503 Service Unavailable", "the begun request")
    h.eq(s.proc.wait(60), 0, "exit code; log:\n" + s.log_tail())
    assert s.log_tail().endswith("stopped"), s.log_tail()


def test_out_of_descriptors_the_listener_waits_and_recovers():
    """With 64 descriptors in all, 80 clients connect before any of them sends
    its request. Those the server cannot take wait in the kernel's backlog
    while accept fails (EMFILE, said in the log); as the first are answered
    and closed, every waiting one is taken and served."""
    limit = 64

    def few_descriptors():
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    s = h.Server(BIN, preexec_fn=few_descriptors).start()
    SERVERS.append(s)
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    clients = []
    for _ in range(80):
        clients.append(socket.create_connection(("127.0.0.1", s.port), timeout=30))
    deadline = time.time() + 10
    while "Too many open files" not in s.log_tail(200) and time.time() < deadline:
        time.sleep(0.02)
    for c in clients:
        c.sendall(request)
    answered = 0
    for c in clients:  # in order: the first are answered, then room is made for the rest
        answer = read_all(c)
        c.close()
        h.eq(answer.split(b"\r\n")[0], b"HTTP/1.1 200 OK", "client %d" % answered)
        answered += 1
    h.eq(answered, 80, "every client served")
    assert "accept failed: Too many open files" in s.log_tail(200), s.log_tail()
    h.eq(s.stop(), 0, "exit code; log:\n" + s.log_tail())

if __name__ == "__main__":
    h.run(dict(globals()), setup, teardown)
