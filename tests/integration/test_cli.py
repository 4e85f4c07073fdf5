#!/usr/bin/env python3
"""The command line: help texts (every serve flag with its environment
variable), version, `simulate` (reproducible, valid Segment JSONL),
`import --format segment-jsonl` (counts, re-import adds nothing, bad input
reported), environment-variable fallbacks of `serve`, generated keys, and,
when ../shared/data/online-retail/online_retail.csv.zst exists, the import of
the UCI Online Retail file checked against numbers computed here from the CSV.
Usage: test_cli.py PATH/TO/bespoke"""

import collections
import csv
import http.client
import io
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal, ROUND_HALF_UP

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

BIN = h.binary_from_argv()
SERVERS = []
WORK = {}
RETAIL = os.path.join(h.REPO_ROOT, "..", "shared", "data", "online-retail",
                      "online_retail.csv.zst")
SIM_EVENTS = 20000
TYPES = {"track", "identify", "page", "screen", "group", "alias"}


def run_cli(*args, env=None, timeout=300, stdin=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("BESPOKE_")}
    e.update(env or {})
    p = subprocess.run([BIN] + list(args), capture_output=True, text=True, env=e,
                       timeout=timeout, stdin=stdin if stdin is not None else subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def setup():
    WORK["dir"] = h.temp_dir("bespoke-cli-")


def teardown():
    h.stop_all(SERVERS)


def start(data_dir, **kw):
    s = h.Server(BIN, data_dir=data_dir, **kw).start()
    SERVERS.append(s)
    return s


def stop(s):
    code = s.stop()
    h.eq(code, 0, "server exit code on SIGTERM; log:\n" + s.log_tail())


# --- help and version ---------------------------------------------------------

SERVE_FLAGS = [("--listen", "BESPOKE_LISTEN"), ("--data", "BESPOKE_DATA"),
               ("--write-key", "BESPOKE_WRITE_KEY"), ("--admin-key", "BESPOKE_ADMIN_KEY"),
               ("--threads", "BESPOKE_THREADS"), ("--queue-max", "BESPOKE_QUEUE_MAX"),
               ("--profile-memo", "BESPOKE_PROFILE_MEMO"), ("--web", "BESPOKE_WEB"),
               ("--wal-sync", "BESPOKE_WAL_SYNC"), ("--event-packing", "BESPOKE_EVENT_PACKING"),
               ("--log-level", "BESPOKE_LOG_LEVEL")]


def test_main_help():
    for args in (["--help"], ["help"], ["-h"]):
        code, out, err = run_cli(*args)
        h.eq(code, 0, "exit code of bespoke %s" % args[0])
        for cmd in ("serve", "import", "simulate"):
            assert re.search(r"^\s+%s\s" % cmd, out, re.M), \
                "bespoke %s does not list %s:\n%s" % (args[0], cmd, out)
    code, out, err = run_cli()
    h.eq(code, 2, "exit code without a command")
    assert "serve" in err, "usage on stderr without a command: %r" % err
    code, out, err = run_cli("frobnicate")
    h.eq(code, 2, "exit code of an unknown command")
    assert "frobnicate" in err, "unknown command named: %r" % err


def test_serve_help_lists_every_flag_with_env():
    code, out, err = run_cli("serve", "--help")
    h.eq(code, 0, "serve --help exit code")
    for flag, env in SERVE_FLAGS:
        lines = [ln for ln in out.splitlines() if re.search(r"(^|\s)%s(\s|$)" % flag, ln)]
        assert lines, "serve --help lacks %s:\n%s" % (flag, out)
        assert env in lines[0], "serve --help: %s without %s: %r" % (flag, env, lines[0])
    code, out, err = run_cli("serve", "--no-such-flag")
    h.eq(code, 2, "serve with an unknown flag")
    code, out, err = run_cli("serve", "--threads", "many")
    h.eq(code, 2, "serve --threads many")
    code, out, err = run_cli("serve", "--profile-memo", "lots")
    h.eq(code, 2, "serve --profile-memo lots")
    assert "--profile-memo" in err, "serve --profile-memo lots: %r" % err


def test_import_and_simulate_help():
    code, out, err = run_cli("import", "--help")
    h.eq(code, 0, "import --help")
    for flag in ("--data", "--format", "--no-progress", "segment-jsonl", "online-retail",
                 "BESPOKE_DATA", "--event-packing", "BESPOKE_EVENT_PACKING"):
        assert flag in out, "import --help lacks %s" % flag
    code, out, err = run_cli("simulate", "--help")
    h.eq(code, 0, "simulate --help")
    for flag in ("--events", "--out", "--seed", "--products", "--visitors", "--catalog"):
        assert flag in out, "simulate --help lacks %s" % flag


def test_version():
    for arg in ("version", "--version"):
        code, out, err = run_cli(arg)
        h.eq(code, 0, "bespoke " + arg)
        assert re.fullmatch(r"bespoke \d+\.\d+\.\d+\n", out), "version output: %r" % out


# --- simulate -------------------------------------------------------------------

def test_simulate_is_reproducible_and_valid():
    d = WORK["dir"]
    f1, f2, f3 = (os.path.join(d, n) for n in ("sim1.jsonl", "sim2.jsonl", "sim3.jsonl"))
    for f in (f1, f2):
        code, out, err = run_cli("simulate", "--events", str(SIM_EVENTS), "--out", f,
                                 "--seed", "7")
        h.eq(code, 0, "simulate exit code (%s)" % err.strip())
    b1, b2 = open(f1, "rb").read(), open(f2, "rb").read()
    assert b1 == b2, "simulate --seed 7 twice gives different files"
    code, out, err = run_cli("simulate", "--events", str(SIM_EVENTS), "--out", f3,
                             "--seed", "8")
    h.eq(code, 0, "simulate --seed 8")
    assert open(f3, "rb").read() != b1, "another seed gives the same file"
    lines = b1.decode().splitlines()
    h.eq(len(lines), SIM_EVENTS, "lines written")
    mids = set()
    kinds = collections.Counter()
    names = collections.Counter()
    for i, line in enumerate(lines, 1):
        try:
            m = json.loads(line)
        except ValueError as e:
            raise AssertionError("line %d is not JSON (%s): %r" % (i, e, line[:200]))
        assert isinstance(m, dict), "line %d is not an object" % i
        assert m.get("type") in TYPES, "line %d has type %r" % (i, m.get("type"))
        assert m.get("userId") or m.get("anonymousId"), "line %d has no id" % i
        assert isinstance(m.get("messageId"), str) and m["messageId"], "line %d messageId" % i
        assert isinstance(m.get("timestamp"), str), "line %d has no timestamp" % i
        if m["type"] == "track":
            assert isinstance(m.get("event"), str) and m["event"], "line %d event" % i
            names[m["event"]] += 1
        mids.add(m["messageId"])
        kinds[m["type"]] += 1
    h.eq(len(mids), SIM_EVENTS, "distinct messageIds")
    for kind in ("track", "identify", "page"):
        assert kinds[kind] > 0, "no %s events in %r" % (kind, dict(kinds))
    for name in ("Product Viewed", "Product Added", "Order Completed", "Products Searched"):
        assert names[name] > 0, "no %r events in %r" % (name, dict(names))
    # standard output
    code, out, err = run_cli("simulate", "--events", "50", "--out", "-", "--seed", "7")
    h.eq(code, 0, "simulate --out -")
    h.eq(len(out.splitlines()), 50, "50 lines on stdout")
    for line in out.splitlines():
        assert json.loads(line).get("type") in TYPES, "stdout line: %r" % line[:200]
    WORK["sim"] = f1
    WORK["sim_lines"] = lines
    code, out, err = run_cli("simulate", "--out", f3)
    h.eq(code, 2, "simulate without --events")


# --- import ---------------------------------------------------------------------------

SUMMARY = re.compile(r"imported: (\d+) rows, (\d+) events \((\d+) new, (\d+) already present\), "
                     r"(\d+) products, (\d+) rejects")


def summary(out):
    m = SUMMARY.search(out)
    assert m, "no import summary in %r" % out
    return tuple(int(x) for x in m.groups())


def expected_identities(lines):
    """Distinct ids, replayed in order as identity resolution stores them."""
    ids = set()
    for line in lines:
        m = json.loads(line)
        for kind, key in (("u", "userId"), ("a", "anonymousId")):
            v = m.get(key)
            if v not in (None, ""):
                ids.add((kind, str(v)))
        if m.get("type") == "alias" and m.get("previousId") not in (None, ""):
            p = str(m["previousId"])
            if ("u", p) not in ids and ("a", p) not in ids:
                ids.add(("a", p))
    return len(ids)


def test_import_segment_jsonl():
    assert "sim" in WORK, "needs the simulate test's file"
    data = os.path.join(WORK["dir"], "store-sim")
    code, out, err = run_cli("import", "--data", data, "--format", "segment-jsonl",
                             "--no-progress", WORK["sim"])
    h.eq(code, 0, "import exit code (%s)" % err.strip())
    rows, events, new, present, products, rejects = summary(out)
    h.eq((rows, events, new, present, rejects), (SIM_EVENTS, SIM_EVENTS, SIM_EVENTS, 0, 0),
         "import summary (rows, events, new, present, rejects)")
    s = start(data)
    st = s.stats()
    h.eq(st["events"], SIM_EVENTS, "stats.events after import")
    h.eq(st["last_seq"], SIM_EVENTS, "stats.last_seq after import")
    h.eq(st["identities"], expected_identities(WORK["sim_lines"]), "stats.identities")
    assert 0 < st["profiles"] <= st["identities"], "stats.profiles %r" % st
    assert st["products"] > 0, "products learnt from the simulated events: %r" % st
    # sampled events are in their profile's timeline
    rng = random.Random(7)
    for line in rng.sample(WORK["sim_lines"], 15):
        m = json.loads(line)
        pid = m.get("userId") or m.get("anonymousId")
        evs = s.all_events(pid)
        assert m["messageId"] in {e["messageId"] for e in evs}, \
            "%s not in the timeline of %s" % (m["messageId"], pid)
    WORK["sim_stats"] = st
    stop(s)
    # importing again adds nothing
    code, out, err = run_cli("import", "--data", data, "--format", "segment-jsonl",
                             "--no-progress", WORK["sim"])
    h.eq(code, 0, "second import exit code")
    rows, events, new, present, products, rejects = summary(out)
    h.eq((rows, new, present, rejects), (SIM_EVENTS, 0, SIM_EVENTS, 0),
         "second import summary (rows, new, present, rejects)")
    s = start(data)
    h.eq(s.stats(), WORK["sim_stats"], "stats after importing again")
    stop(s)


def test_import_from_stdin_and_zst():
    lines = WORK["sim_lines"][:300]
    data = os.path.join(WORK["dir"], "store-stdin")
    text = "\n".join(lines) + "\n"
    p = subprocess.run([BIN, "import", "--data", data, "--format", "segment-jsonl",
                        "--no-progress", "-"], input=text, capture_output=True, text=True,
                       timeout=120)
    h.eq(p.returncode, 0, "import - (%s)" % p.stderr.strip())
    h.eq(summary(p.stdout)[:4], (300, 300, 300, 0), "stdin import")
    zst = os.path.join(WORK["dir"], "more.jsonl.zst")
    subprocess.run(["zstd", "-q", "-f", "-o", zst], input=text.encode(), check=True)
    code, out, err = run_cli("import", "--data", data, "--format", "segment-jsonl",
                             "--no-progress", zst)
    h.eq(code, 0, "zst import (%s)" % err.strip())
    h.eq(summary(out)[:4], (300, 300, 0, 300), ".zst import of the same lines")


def test_event_packing_small_then_fast():
    """Three quarters of the simulated file imported with --event-packing
    small (zstd frames), the rest with the default (LZ4 frames): the server
    reads the timelines of the mixed store. The import packs from its
    10,000th event on (its first chunks are read before the dictionary is
    learnt), so the events sampled are from 10,000 on. A bad value is
    refused."""
    assert "sim" in WORK, "needs the simulate test's file"
    lines = WORK["sim_lines"]
    half = len(lines) * 3 // 4
    data = os.path.join(WORK["dir"], "store-packing")
    parts = [(lines[:half], ["--event-packing", "small"], {}),
             (lines[half:], [], {"BESPOKE_EVENT_PACKING": "fast"})]
    for i, (part, flags, env) in enumerate(parts):
        f = os.path.join(WORK["dir"], "packing-%d.jsonl" % i)
        with open(f, "w") as out:
            out.write("\n".join(part) + "\n")
        code, out, err = run_cli("import", "--data", data, "--format", "segment-jsonl",
                                 "--no-progress", *flags, f, env=env)
        h.eq(code, 0, "import of part %d (%s)" % (i, err.strip()))
        h.eq(summary(out)[:4], (len(part), len(part), len(part), 0), "part %d summary" % i)
    s = start(data)
    rng = random.Random(11)
    for line in rng.sample(lines[10000:half], 10) + rng.sample(lines[half:], 10):
        m = json.loads(line)
        pid = m.get("userId") or m.get("anonymousId")
        got = {e["messageId"]: e for e in s.all_events(pid)}
        assert m["messageId"] in got, "%s not in the timeline of %s" % (m["messageId"], pid)
        h.eq(got[m["messageId"]].get("event"), m.get("event"), "event name read back")
    stop(s)
    code, _, err = run_cli("import", "--data", data, "--format", "segment-jsonl",
                           "--event-packing", "tiny", "-")
    h.eq(code, 2, "import --event-packing tiny")
    assert "--event-packing takes 'fast' or 'small'" in err, err
    code, _, err = run_cli("serve", "--data", data, env={"BESPOKE_EVENT_PACKING": "zip"},
                           timeout=60)
    h.eq(code, 2, "serve with BESPOKE_EVENT_PACKING=zip")
    assert "--event-packing takes 'fast' or 'small', not 'zip'" in err, err


def test_import_bad_file_reports_rejects():
    f = os.path.join(WORK["dir"], "bad.jsonl")
    good = {"type": "track", "userId": "imp-u1", "event": "Ok", "messageId": "imp-1"}
    with open(f, "w") as fh:
        fh.write(json.dumps(good) + "\n")
        fh.write("this is not json\n")
        fh.write(json.dumps({"type": "track", "userId": "imp-u1"}) + "\n")
        fh.write(json.dumps({"type": "bogus", "userId": "imp-u1"}) + "\n")
        fh.write(json.dumps({"type": "identify", "userId": "imp-u1",
                             "traits": {"a": 1}, "messageId": "imp-2"}) + "\n")
    data = os.path.join(WORK["dir"], "store-bad")
    code, out, err = run_cli("import", "--data", data, "--format", "segment-jsonl",
                             "--no-progress", f)
    h.eq(code, 0, "import of a partly bad file exits 0 (%s)" % err.strip())
    rows, events, new, present, products, rejects = summary(out)
    h.eq((rows, events, new, present, rejects), (5, 2, 2, 0, 3), "summary of the bad file")
    m = re.search(r"first reject: (.*)", out)
    assert m and "line 2" in m.group(1), "first reject names line 2: %r" % out
    s = start(data)
    h.eq(s.stats()["events"], 2, "events stored")
    h.eq([e["messageId"] for e in s.all_events("imp-u1")], ["imp-2", "imp-1"], "timeline")
    stop(s)
    # errors that stop the import
    code, out, err = run_cli("import", "--data", data, "--format", "segment-jsonl",
                             os.path.join(WORK["dir"], "missing.jsonl"))
    assert code != 0, "import of a missing file exits 0"
    assert "missing.jsonl" in err or "No such file" in err or "not found" in err.lower(), \
        "missing file not named: %r" % err
    code, out, err = run_cli("import", "--data", data, "--format", "xml", f)
    h.eq(code, 2, "unknown format")
    code, out, err = run_cli("import", "--data", data, "--format", "online-retail", f)
    assert code != 0, "a JSONL file imported as online-retail exits 0"
    assert "header" in err, "wrong header explained: %r" % err
    code, out, err = run_cli("import", "--data", data, f)
    h.eq(code, 2, "import without --format")


# --- environment fallbacks of serve ----------------------------------------------------------

def test_serve_env_var_fallbacks():
    d = os.path.join(WORK["dir"], "store-env")
    s = start(d, write_key="wk_env", admin_key="ak_env", keys_as_flags=False,
              addr_as_flags=False, env={"BESPOKE_QUEUE_MAX": "1", "BESPOKE_THREADS": "1",
                                        "BESPOKE_LOG_LEVEL": "warn"})
    h.success(s.collect("/v1/track", {"userId": "env-u", "event": "E"}, key="wk_env"),
              "BESPOKE_WRITE_KEY")
    h.error(s.collect("/v1/track", {"userId": "env-u", "event": "E"}, key=h.WRITE_KEY), 401,
            "unauthorized", what="another write key")
    h.status(s.admin("GET", "/v1/admin/stats", key="ak_env"), 200, "BESPOKE_ADMIN_KEY")
    h.error(s.admin("GET", "/v1/admin/stats", key=h.ADMIN_KEY), 401, "unauthorized",
            what="another admin key")
    r = s.collect("/v1/batch", {"batch": [{"type": "track", "userId": "env-u", "event": "A"},
                                          {"type": "track", "userId": "env-u", "event": "B"}]},
                  key="wk_env")
    h.error(r, 429, "busy", what="BESPOKE_QUEUE_MAX=1 with a batch of 2")
    assert os.path.exists(os.path.join(d, "data.mdb")) or os.listdir(d), \
        "BESPOKE_DATA directory not used"
    h.eq(s.stats()["events"], 1, "stats via env keys")
    stop(s)
    # flags win over the environment
    s = start(d, write_key="wk_flag", admin_key="ak_flag",
              env={"BESPOKE_WRITE_KEY": "wk_env", "BESPOKE_ADMIN_KEY": "ak_env"})
    h.success(s.collect("/v1/track", {"userId": "env-u", "event": "F"}, key="wk_flag"),
              "flag key")
    h.error(s.collect("/v1/track", {"userId": "env-u", "event": "F"}, key="wk_env"), 401,
            "unauthorized", what="env key when a flag is given")
    h.eq(s.stats()["events"], 2, "same data dir via BESPOKE_DATA then --data")
    stop(s)
    # BESPOKE_DATA for import
    f = os.path.join(WORK["dir"], "one.jsonl")
    with open(f, "w") as fh:
        fh.write(json.dumps({"type": "track", "userId": "env-u", "event": "I",
                             "messageId": "env-imp-1"}) + "\n")
    code, out, err = run_cli("import", "--format", "segment-jsonl", "--no-progress", f,
                             env={"BESPOKE_DATA": d})
    h.eq(code, 0, "import with BESPOKE_DATA (%s)" % err.strip())
    h.eq(summary(out)[2], 1, "imported into BESPOKE_DATA")
    s = start(d)
    h.eq(s.stats()["events"], 3, "import went to BESPOKE_DATA")
    stop(s)


def test_serve_listen_address_errors_and_ipv6():
    d = os.path.join(WORK["dir"], "store-listen")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        code, _, err = run_cli("serve", "--data", d, "--listen", "127.0.0.1:%d" % port,
                               timeout=60)
    finally:
        taken.close()
    h.eq(code, 1, "a taken port")
    assert "could not listen on 127.0.0.1:%d: Address already in use" % port in err, err
    code, _, err = run_cli("serve", "--data", d, "--threads", "1025", timeout=60)
    h.eq(code, 2, "--threads over the maximum")
    assert "--threads takes at most 1024" in err, err
    for bad in ("0", "1001", "5s", "often", "-3"):
        code, _, err = run_cli("serve", "--data", d, "--wal-sync", bad, timeout=60)
        h.eq(code, 2, "--wal-sync %s" % bad)
        assert "--wal-sync takes 'always' or milliseconds from 1 to 1000" in err, err
    code, _, err = run_cli("serve", "--data", d, "--listen", "no-port-here", timeout=60)
    h.eq(code, 1, "an address without a port")
    assert "bad listen address no-port-here" in err, err
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        print("# no IPv6 loopback here: the [::1] part is skipped")
        return
    port = h.free_port()
    log = open(os.path.join(WORK["dir"], "v6.log"), "wb")
    p = subprocess.Popen([BIN, "serve", "--data", d, "--listen", "[::1]:%d" % port],
                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    try:
        status = None
        for _ in range(600):
            try:
                c = http.client.HTTPConnection("::1", port, timeout=2)
                c.request("GET", "/healthz")
                status = c.getresponse().status
                c.close()
                break
            except OSError:
                time.sleep(0.05)
        h.eq(status, 200, "/healthz over [::1]")
    finally:
        p.send_signal(signal.SIGTERM)
        h.eq(p.wait(60), 0, "exit code of the [::1] server")


def test_generated_keys_are_kept():
    d = os.path.join(WORK["dir"], "store-genkeys")
    s = start(d, write_key=None, admin_key=None)
    log = open(s.log_path).read()
    wk = re.search(r"write key: (\S+)", log)
    ak = re.search(r"admin key: (\S+)", log)
    assert wk and ak, "generated keys not printed on first start:\n" + log
    wk, ak = wk.group(1), ak.group(1)
    assert wk != ak, "write and admin keys are equal"
    h.success(s.collect("/v1/track", {"userId": "g", "event": "E"}, key=wk), "generated wk")
    h.status(s.admin("GET", "/v1/admin/stats", key=ak), 200, "generated ak")
    stop(s)
    s = start(d, write_key=None, admin_key=None)
    log = open(s.log_path).read()
    assert wk not in log and ak not in log, "keys printed again on the second start"
    h.success(s.collect("/v1/track", {"userId": "g", "event": "E2"}, key=wk), "kept wk")
    h.status(s.admin("GET", "/v1/admin/stats", key=ak), 200, "kept ak")
    stop(s)


# --- UCI Online Retail --------------------------------------------------------------------------

def money(d):
    return float(d.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def parse_retail():
    """Per invoice: customer (first non-empty), exact total, cancel flag; plus
    the product codes and the file total."""
    raw = subprocess.run(["zstd", "-dc", RETAIL], capture_output=True, check=True).stdout
    rd = csv.reader(io.StringIO(raw.decode("utf-8", "replace")))
    next(rd)
    inv = collections.OrderedDict()
    codes = set()
    total = Decimal(0)
    for row in rd:
        if not row:
            continue
        invoice, code, _desc, qty, date, price, customer, country = row
        amount = Decimal(qty) * Decimal(price)
        total += amount
        customer = customer.strip()
        if customer.endswith(".0"):
            customer = customer[:-2]
        i = inv.get(invoice)
        if i is None:
            i = inv[invoice] = {"customer": "", "total": Decimal(0), "date": date,
                                "country": country}
        i["total"] += amount
        if not i["customer"] and customer:
            i["customer"] = customer
        if re.fullmatch(r"\d{5}[A-Za-z]*", code.strip()):
            codes.add(code.strip())
    return inv, codes, total


def test_online_retail_import():
    if not os.path.exists(RETAIL):
        raise h.Skip("%s is absent" % os.path.normpath(RETAIL))
    if h.SANITIZED:
        raise h.Skip("BESPOKE_SANITIZED=1 (too slow under ASan)")
    inv, codes, total = parse_retail()
    h.eq(money(total), 9747747.93, "file total (parser check)")
    per_cust = collections.defaultdict(lambda: {"orders": 0, "revenue": Decimal(0)})
    guests = {}
    for number, i in inv.items():
        if i["customer"]:
            c = per_cust[i["customer"]]
            c["revenue"] += i["total"]
            if not number.startswith("C"):
                c["orders"] += 1
        else:
            guests["guest-" + number] = i
    h.eq(len(per_cust), 4372, "customers in the file (parser check)")
    data = os.path.join(WORK["dir"], "store-retail")
    code, out, err = run_cli("import", "--data", data, "--format", "online-retail",
                             "--no-progress", RETAIL, timeout=600)
    h.eq(code, 0, "online-retail import exit code (%s)" % err.strip())
    rows, events, new, present, products, rejects = summary(out)
    h.eq((rows, rejects), (541909, 0), "rows and rejects")
    assert re.search(r"^segments brought up to date in [0-9.]+ s$", out, re.M), out
    s = start(data)
    st = s.stats()
    problems = []

    def check(got, want, what):
        if got != want:
            problems.append("%s: expected %r, got %r" % (what, want, got))

    check(st["events"], len(inv), "stats.events == invoices (one event per invoice)")
    check(events, len(inv), "import summary events == invoices")
    check(st["profiles"], 4372 + len(guests), "stats.profiles == customers + guest invoices")
    check(st["identities"], 4372 + len(guests), "stats.identities")
    check(st["products"], len(codes), "stats.products == product stock codes")
    check(products, len(codes), "import summary products")
    p = s.profile("17850")
    h.status(p, 200, "profile 17850")
    c = p.json["computed"]
    check(c["orders"], per_cust["17850"]["orders"], "17850 orders")
    check(c["revenue"], money(per_cust["17850"]["revenue"]), "17850 revenue")
    check(c["country"], "United Kingdom", "17850 country")
    check(p.json["ids"], {"userId": ["17850"], "anonymousId": []}, "17850 ids")
    assert c["orders"] > 0 and c["revenue"] > 0, "17850 has orders and revenue: %r" % c
    found = 0
    api_sum = Decimal(0)
    want_sum = Decimal(0)
    bad_customers = []
    for cust, want in per_cust.items():
        r = s.profile(cust)
        if r.status != 200:
            bad_customers.append("%s: HTTP %d" % (cust, r.status))
            continue
        found += 1
        got = r.json["computed"]
        api_sum += Decimal(repr(got["revenue"]))
        want_sum += Decimal(repr(money(want["revenue"])))
        if got["orders"] != want["orders"] or abs(got["revenue"] - money(want["revenue"])) > 0.001:
            bad_customers.append("%s: orders %r revenue %r, expected %r %r" % (
                cust, got["orders"], got["revenue"], want["orders"], money(want["revenue"])))
    check(found, 4372, "known customers found by userId")
    bad_guests = []
    for gid, i in guests.items():
        r = s.profile(gid)
        if r.status != 200:
            bad_guests.append("%s: HTTP %d" % (gid, r.status))
            continue
        got = r.json["computed"]["revenue"]
        api_sum += Decimal(repr(got))
        want_sum += Decimal(repr(money(i["total"])))
        if abs(got - money(i["total"])) > 0.001:
            bad_guests.append("%s: revenue %r, expected %r" % (gid, got, money(i["total"])))
    # The import settled high_value: its threshold is the top-10% boundary
    # of the buyers' net revenue, and it is filled in before any server ran
    # its own refresh.
    buyers = [money(w["revenue"]) for w in per_cust.values() if w["orders"] > 0]
    buyers += [money(i["total"]) for gid, i in guests.items()
               if not gid[len("guest-"):].startswith("C")]  # adjustments count as orders
    buyers.sort(reverse=True)
    boundary = buyers[max(int(len(buyers) * 0.10), 1) - 1]
    hv = s.admin("GET", "/v1/admin/segments/high_value")
    h.status(hv, 200, "high_value after the import")
    threshold = float(hv.json["condition"].rsplit(">=", 1)[1])
    check(abs(threshold - boundary) < 0.006, True,
          "high_value threshold %r is the boundary %r" % (threshold, boundary))
    check(hv.json["status"], "ready", "high_value status")
    check(hv.json["size"], sum(1 for r in buyers if r >= threshold), "high_value size")
    if bad_customers:
        problems.append("%d customers wrong, e.g. %s" % (len(bad_customers), bad_customers[:5]))
    if bad_guests:
        problems.append("%d guest orders wrong, e.g. %s" % (len(bad_guests), bad_guests[:5]))
    check(api_sum, want_sum, "sum of profile revenues (each rounded to cents)")
    print("# online retail: revenue over %d customers and %d guest orders = %s "
          "(file total %s)" % (found, len(guests), api_sum, total))
    if abs(api_sum - Decimal("9747747.93")) > Decimal("0.05"):
        problems.append("sum of revenues %s is not the file total 9747747.93" % api_sum)
    stop(s)
    assert not problems, "\n  ".join(["online retail:"] + problems)


if __name__ == "__main__":
    h.run(dict(globals()), setup, teardown)
