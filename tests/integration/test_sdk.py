#!/usr/bin/env python3
"""Segment SDK compatibility: the unchanged npm package @segment/analytics-node
(tests/node) sends identify, track, page, screen, group, alias and a burst it
batches itself to a real server; the profiles are then checked through the
admin API. Fails (does not skip) when node or the package is missing.
Usage: test_sdk.py PATH/TO/bespoke"""

import json
import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

BIN = h.binary_from_argv()
NODE_DIR = os.path.join(h.REPO_ROOT, "tests", "node")
SCRIPT = os.path.join(NODE_DIR, "sdk_test.mjs")
BURST = 57
S = None
SERVERS = []
RUN = {}


def setup():
    global S
    node = shutil.which("node")
    assert node, "node is not installed: run scripts/install-deps.sh"
    pkg = os.path.join(NODE_DIR, "node_modules", "@segment", "analytics-node", "package.json")
    assert os.path.exists(pkg), ("@segment/analytics-node is not installed in tests/node: "
                                 "run scripts/install-deps.sh (npm install in tests/node)")
    want = json.load(open(os.path.join(NODE_DIR, "package.json")))["dependencies"][
        "@segment/analytics-node"]
    got = json.load(open(pkg))["version"]
    assert got == want, "installed @segment/analytics-node %s, package.json pins %s" % (got, want)
    S = h.Server(BIN).start()
    SERVERS.append(S)
    p = subprocess.run([node, SCRIPT, str(S.port), h.WRITE_KEY, str(BURST)],
                       capture_output=True, text=True, timeout=120, cwd=NODE_DIR)
    RUN["code"], RUN["stdout"], RUN["stderr"] = p.returncode, p.stdout, p.stderr
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    RUN["report"] = json.loads(lines[-1]) if lines else None


def teardown():
    h.stop_all(SERVERS)


def test_sdk_delivered_everything():
    h.eq(RUN["code"], 0, "node sdk_test.mjs exit code (stdout %r, stderr %r)"
         % (RUN["stdout"][-500:], RUN["stderr"][-1500:]))
    rep = RUN["report"]
    assert rep, "no report from sdk_test.mjs: %r" % RUN["stdout"]
    h.eq(rep["errors"], [], "SDK delivery errors")
    h.eq(rep["sent"], 8 + BURST, "events sent")
    h.eq(list(rep["statuses"].keys()), ["200"], "HTTP statuses the SDK saw")
    h.eq(rep["statuses"]["200"], rep["requests"], "every request answered 200")
    assert rep["requests"] >= (8 + BURST + 9) // 10, "batched by 10 at most: %r" % rep
    assert rep["requests"] < 8 + BURST, "the SDK did not batch: %r" % rep


def test_stats_and_metrics():
    h.eq(S.stats()["events"], 8 + BURST, "stats.events")
    text = S.request("GET", "/metrics").body.decode()
    m = re.search(r'^bespoke_http_requests_total\{(?=[^}]*route="/v1/batch")'
                  r'(?=[^}]*status="200")[^}]*\}\s+(\d+)', text, re.M)
    assert m, "no bespoke_http_requests_total for /v1/batch 200 in /metrics"
    h.eq(int(m.group(1)), RUN["report"]["requests"], "server counted the SDK's requests")


def test_identified_profile():
    r = S.profile("sdk-user-1")
    h.status(r, 200, "profile sdk-user-1")
    p = r.json
    h.eq(S.profile("sdk-anon-1").json, p, "anonymousId resolves to the same profile")
    h.eq(S.profile("sdk-prev-1").json, p, "alias previousId resolves to the same profile")
    h.eq(p["ids"]["userId"], ["sdk-user-1"], "userIds")
    h.eq(sorted(p["ids"]["anonymousId"]), ["sdk-anon-1", "sdk-prev-1"], "anonymousIds")
    h.eq(p["traits"].get("email"), "sdk@example.com", "traits.email")
    h.eq(p["traits"].get("quiz"), {"style": "boho", "budget": "mid"}, "traits.quiz")
    assert "plan" not in p["traits"], "group traits leaked into the person's traits"
    c = p["computed"]
    for k, v in {"page_views": 2, "product_views": 1, "orders": 1, "revenue": 42.5,
                 "aov": 42.5, "recently_viewed": ["sdk-p1"], "purchased": ["sdk-p1"],
                 "sessions": 1, "first_seen": "2024-11-01T10:00:00.000Z",
                 "last_seen": "2024-11-01T10:06:00.000Z",
                 "last_order_at": "2024-11-01T10:06:00.000Z"}.items():
        h.eq(c.get(k), v, "computed.%s" % k)
    evs = S.all_events("sdk-user-1")
    h.eq([e["messageId"] for e in evs],
         ["sdk-order-1", "sdk-alias-1", "sdk-group-1", "sdk-screen-1", "sdk-page-1",
          "sdk-track-1", "sdk-identify-1"], "timeline")
    h.eq([e["type"] for e in evs],
         ["track", "alias", "group", "screen", "page", "track", "identify"], "types")
    for e in evs:
        lib = (e.get("context") or {}).get("library") or {}
        h.eq(lib.get("name"), "@segment/analytics-node", "context.library.name of %s"
             % e["messageId"])
        assert "writeKey" not in e, "writeKey stored"
    page = evs[4]
    h.eq(page.get("name"), "Home", "page name")
    h.eq(page.get("properties", {}).get("path"), "/", "page properties")
    h.eq(evs[2].get("groupId"), "sdk-group-1", "groupId")
    h.eq(evs[1].get("previousId"), "sdk-prev-1", "previousId")
    r = S.admin("GET", "/v1/admin/products/sdk-p1")
    h.status(r, 200, "product learnt from the SDK's Product Viewed")
    h.eq(r.json.get("name"), "Rattan Chair", "learnt product name")


def test_anonymous_profile():
    r = S.profile("sdk-anon-2")
    h.status(r, 200)
    h.eq(r.json["ids"], {"userId": [], "anonymousId": ["sdk-anon-2"]}, "ids")
    h.eq(r.json["computed"]["last_search"], "rattan", "last_search")


def test_burst():
    evs = S.all_events("sdk-burst", limit=20)
    h.eq(len(evs), BURST, "burst events stored")
    h.eq(sorted(e["properties"]["i"] for e in evs), list(range(BURST)), "each once")
    h.eq(len({e["messageId"] for e in evs}), BURST, "distinct messageIds")
    h.eq(S.profile("sdk-burst").json["computed"]["sessions"], 1, "one session")


if __name__ == "__main__":
    h.run(dict(globals()), setup, teardown)
