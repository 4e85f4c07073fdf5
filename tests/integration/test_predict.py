#!/usr/bin/env python3
"""Predictive scores end to end: a year of orders sent over HTTP (weekly
buyers who keep buying, monthly buyers who stopped), segments on predicted.*
saved while nobody has a score, `bespoke predict` on the stopped server's
data, then predicted.purchase/churn/ltv in GET /v1/admin/profiles/{id} and
the segments "likely to buy" and "at risk" with the right members; the
periodic job of the server scoring on its own; an erased visitor absent.
With ../shared/data, `bespoke eval --only scores` on the tuning file.
Usage: test_predict.py PATH/TO/bespoke"""

import datetime
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

BIN = h.binary_from_argv()
SERVERS = []
DATA = h.temp_dir()
RETAIL = os.path.join(h.REPO_ROOT, "..", "shared", "data", "online-retail",
                      "online_retail.csv.zst")
START = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)


def teardown():
    h.stop_all(SERVERS)


def start(*args):
    h.stop_all(SERVERS)
    s = h.Server(BIN, data_dir=DATA, extra_args=list(args)).start()
    SERVERS.append(s)
    return s


def iso(day):
    return (START + datetime.timedelta(days=day)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def orders(s, user, first, last, every):
    batch = [{"type": "track", "event": "Order Completed", "userId": user,
              "messageId": "o-%s-%d" % (user, d), "timestamp": iso(d),
              "properties": {"order_id": "%s-%d" % (user, d), "revenue": 20 + d % 7}}
             for d in range(first, last + 1, every)]
    h.success(s.collect("/v1/batch", {"batch": batch}), "orders of %s" % user)


def shop(s):
    for i in range(12):
        orders(s, "weekly%d" % i, i % 7, 300, 7)
        orders(s, "lapsed%d" % i, i, 180, 30)
        orders(s, "early%d" % i, i, 100, 14)
    h.success(s.collect("/v1/page", {"anonymousId": "browser", "messageId": "pg-1",
                                     "timestamp": iso(299), "name": "Home"}))


def put_segment(s, sid, condition):
    r = s.admin("PUT", "/v1/admin/segments/" + sid, {"name": sid, "condition": condition})
    h.status(r, 200, "PUT segment %s: %s" % (sid, r.body[:300]))


def segment(s, sid, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = s.admin("GET", "/v1/admin/segments/" + sid)
        if r.status == 200 and r.json["status"] == "ready":
            return r.json
        time.sleep(0.05)
    raise AssertionError("segment %s never became ready" % sid)


def members(s, sid):
    r = s.admin("GET", "/v1/admin/segments/%s/members?format=jsonl" % sid)
    h.status(r, 200, "members of %s" % sid)
    out = set()
    for line in r.body.decode().splitlines():
        if line.strip():
            m = __import__("json").loads(line)
            out.add(m.get("userId") or m.get("anonymousId"))
    return out


def predicted(s, user):
    r = s.profile(user)
    h.status(r, 200, "profile %s" % user)
    return r.json["predicted"]


def test_predict_then_segments():
    s = start("--predict-interval", "0", "--train-interval", "0", "--rfm-interval", "0")
    shop(s)
    put_segment(s, "likely_to_buy", "predicted.purchase > 0.5")
    put_segment(s, "at_risk", "predicted.churn > 0.7")
    h.eq(segment(s, "likely_to_buy")["size"], 0, "nobody scored yet")
    h.eq(predicted(s, "weekly0"), {}, "no scores before a run")
    h.eq(s.stop(), 0, "server exit")

    p = subprocess.run([BIN, "predict", "--data", DATA, "--no-progress"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, "bespoke predict failed: %s %s" % (p.stdout, p.stderr)
    assert "held out" in p.stdout and "AUC" in p.stdout, p.stdout
    assert "scored 37 profiles" in p.stdout and "model version 1" in p.stdout, p.stdout

    s = start("--predict-interval", "0", "--train-interval", "0", "--rfm-interval", "0")
    w = predicted(s, "weekly3")
    assert w["purchase"] > 0.5 and w["churn"] < 0.3 and w["ltv"] > 20, w
    h.eq(w["model_version"], 1, "model_version")
    assert w["scored_at"].endswith("Z"), w
    lapsed = predicted(s, "lapsed3")
    assert lapsed["purchase"] < 0.5 and lapsed["churn"] > 0.7, lapsed
    assert lapsed["ltv"] < w["ltv"], (lapsed, w)
    browser = predicted(s, "browser")
    assert browser["churn"] is None and 0 <= browser["purchase"] <= 1, browser
    likely = members(s, "likely_to_buy")
    assert {"weekly%d" % i for i in range(12)} <= likely, likely
    assert not any(u.startswith("lapsed") for u in likely), likely
    at_risk = members(s, "at_risk")
    assert {"lapsed%d" % i for i in range(12)} <= at_risk, at_risk
    assert not any(u.startswith("weekly") for u in at_risk), at_risk
    r = s.admin("POST", "/v1/admin/segments/preview",
                {"condition": "predicted.purchase > 0.5 and computed.orders >= 10"})
    h.status(r, 200, "preview")
    h.eq(r.json["size"], len(likely & {"weekly%d" % i for i in range(12)}), "preview size")
    h.eq(s.stop(), 0, "server exit")


def test_periodic_scoring_and_erasure():
    s = start("--predict-interval", "1", "--train-interval", "0", "--rfm-interval", "0")
    h.status(s.admin("DELETE", "/v1/admin/profiles/early5"), 200, "erase early5")
    deadline = time.time() + 30
    version = 1
    while time.time() < deadline and version < 2:  # a run every second, the first after 1 s
        version = predicted(s, "weekly0").get("model_version", 0)
        time.sleep(0.2)
    assert version >= 2, "the server's own run never came: %r" % predicted(s, "weekly0")
    h.status(s.profile("early5"), 404, "erased stays erased")
    assert "early5" not in members(s, "at_risk")
    assert "early4" in members(s, "at_risk")
    h.eq(s.stop(), 0, "server exit")


def test_eval_scores_on_real_data():
    if not os.path.exists(RETAIL):
        raise h.Skip("../shared/data/online-retail/online_retail.csv.zst is absent")
    p = subprocess.run([BIN, "eval", "--format", "online-retail", "--cutoff", "2011-09-01",
                        "--only", "scores", "--no-progress", RETAIL],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    rows = {ln.split()[0]: [float(x) for x in ln.split()[1:7]]
            for ln in p.stdout.splitlines() if ln.split()[:1] in (["purchase"], ["churn"])
            and len(ln.split()) == 7}
    for name in ("purchase", "churn"):
        n, rate, auc, brier, recency, freq = rows[name]
        assert auc > 0.7 and auc > recency and auc > freq, (name, rows)


if __name__ == "__main__":
    h.run(dict(globals()), None, teardown)
