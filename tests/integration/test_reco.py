#!/usr/bin/env python3
"""Recommendations end to end: events and products in over HTTP, no model yet
(503), `bespoke train` on the stopped server's data, then serving with every
filter, rank, errors and auth; the periodic training job swapping a newer
snapshot in while the server runs; and an erased visitor's history gone
from the next snapshot. With ../shared/data, `bespoke eval` on a slice.
Usage: test_reco.py PATH/TO/bespoke"""

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

PRODUCTS = [
    {"id": "mug-1", "name": "Blue mug", "category": "Kitchen > Mugs", "price": 6,
     "brand": "Acme", "in_stock": True},
    {"id": "mug-2", "name": "Red mug", "category": "Kitchen > Mugs", "price": 7,
     "in_stock": False},
    {"id": "pan-1", "name": "Iron pan", "category": "Kitchen > Pans", "price": 30,
     "brand": "Acme"},
    {"id": "pot-1", "name": "Clay pot", "category": "Garden > Pots", "price": 12,
     "tags": ["sale"]},
    {"id": "seed-1", "name": "Tomato seeds", "category": "Garden > Seeds", "price": 3},
]


def teardown():
    h.stop_all(SERVERS)


def start(*args):
    h.stop_all(SERVERS)  # one server a data directory, even after a failed test
    s = h.Server(BIN, data_dir=DATA, extra_args=list(args)).start()
    SERVERS.append(s)
    return s


def order(s, user, n, products, day=1):
    body = {"userId": user, "event": "Order Completed", "messageId": "o-%s-%d" % (user, n),
            "timestamp": "2024-03-%02dT10:00:00.000Z" % day,
            "properties": {"order_id": "%s-%d" % (user, n),
                           "products": [{"product_id": p, "quantity": 1} for p in products]}}
    h.success(s.collect("/v1/track", body), "order %s" % body["messageId"])


def view(s, anon, product, n):
    body = {"anonymousId": anon, "event": "Product Viewed", "messageId": "v-%s-%d" % (anon, n),
            "timestamp": "2024-03-20T10:00:%02d.000Z" % n, "properties": {"product_id": product}}
    h.success(s.collect("/v1/track", body))


def reco(s, body, key=None):
    return s.collect("/v1/recommendations", body, key=key)


def ids(r):
    h.status(r, 200, "recommendations %r" % r)
    return [i["product_id"] for i in r.json["items"]]


def test_train_then_serve():
    s = start("--train-interval", "0")
    h.error(reco(s, {"userId": "ann"}), 503, "unavailable", what="no model yet")
    h.status(s.admin("POST", "/v1/admin/products",
                     "\n".join(__import__("json").dumps(p) for p in PRODUCTS)), 200, "products")
    for i in range(6):
        order(s, "buyer%d" % i, 1, ["mug-1", "pan-1"], day=1 + i)
    for i in range(4):
        order(s, "gardener%d" % i, 1, ["pot-1", "seed-1"], day=2 + i)
    order(s, "ann", 1, ["mug-1"], day=10)
    order(s, "ann", 2, ["mug-1", "seed-1"], day=15)
    h.eq(s.stop(), 0, "server exit")

    p = subprocess.run([BIN, "train", "--data", DATA, "--holdout-days", "0"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, "bespoke train failed: %s %s" % (p.stdout, p.stderr)
    assert "snapshot version 1" in p.stdout, p.stdout
    assert "ease" in p.stdout and "bought_together" in p.stdout, p.stdout
    assert os.path.exists(os.path.join(DATA, "models", "reco-0000000001.bin"))

    s = start("--train-interval", "0")
    got = ids(reco(s, {"userId": "ann", "n": 3}))
    h.eq(got[0], "mug-1", "ann buys mugs again")
    h.eq(len(got), 3, "list kept full")
    r = reco(s, {"userId": "ann", "n": 5, "filters": {"exclude_purchased": True}})
    assert "mug-1" not in ids(r) and "seed-1" not in ids(r), r
    h.eq(ids(r)[0], "pan-1", "bought with what she bought")
    h.eq(r.json["model_version"], 1, "model_version")
    item = r.json["items"][0]
    h.eq(item["name"], "Iron pan", "product fields")
    assert item["source"] in ("personalized", "popular"), item
    # filters: in stock, categories, price, exclusions, diversity, boost/bury
    assert "mug-2" not in ids(reco(s, {"strategy": "popular", "n": 10,
                                       "filters": {"in_stock": True}}))
    got = ids(reco(s, {"strategy": "popular", "n": 10, "filters": {"categories": ["Garden"]}}))
    h.eq(sorted(got), ["pot-1", "seed-1"], "categories")
    got = ids(reco(s, {"strategy": "popular", "n": 10,
                       "filters": {"price_min": 5, "price_max": 12, "exclude": ["pot-1"]}}))
    h.eq(sorted(got), ["mug-1", "mug-2"], "price range and exclude")
    got = ids(reco(s, {"strategy": "popular", "n": 10, "filters": {"max_per_category": 1}}))
    h.eq(len(got), 2, "one per top-level category")
    got = ids(reco(s, {"strategy": "popular", "n": 4, "filters": {
        "boost": [{"attribute": "tags", "value": "sale", "factor": 100}],
        "bury": [{"attribute": "brand", "value": "Acme", "factor": 100}]}}))
    h.eq(got[:2], ["pot-1", "seed-1"], "boosted first")
    h.eq(sorted(got[2:]), ["mug-1", "pan-1"], "buried last")
    # item strategies and fallbacks
    got = ids(reco(s, {"strategy": "bought_together", "items": ["pan-1"], "n": 4}))
    h.eq(got[0], "mug-1", "bought together")
    assert "pan-1" not in got and len(got) == 4, got
    got = ids(reco(s, {"strategy": "similar", "items": ["pot-1"], "n": 1}))
    h.eq(got, ["seed-1"], "similar")
    # a new visitor: the second page is personalized from the first
    view(s, "new-visitor", "pot-1", 1)
    time.sleep(1.5)  # profiles reach readers at the writer's next commit
    got = ids(reco(s, {"anonymousId": "new-visitor", "strategy": "similar", "n": 1}))
    h.eq(got, ["seed-1"], "folded in from recently viewed")
    # a campaign's product block is served by the same models: on the pan's
    # page, "bought together" puts the mug first and leaves the pan out
    h.status(s.admin("PUT", "/v1/admin/placements/pdp_below", {"default": None}), 201)
    camp = {"placement": "pdp_below", "status": "active", "priority": 1,
            "content": {"type": "products", "title": "Bought together",
                        "strategy": "bought_together", "n": 2}}
    h.status(s.admin("PUT", "/v1/admin/campaigns/together", camp), 201)
    r = s.collect("/v1/decide", {"anonymousId": "pdp-visitor", "placements": ["pdp_below"],
                                 "context": {"product": {"id": "pan-1"}}})
    h.status(r, 200, "decide")
    items = r.json["decisions"]["pdp_below"]["content"]["items"]
    h.eq(items[0]["id"], "mug-1", "block from the recommendation module")
    h.eq(items[0]["name"], "Blue mug", "with catalog fields")
    assert all(i["id"] != "pan-1" for i in items), items
    # rank
    r = s.collect("/v1/rank", {"userId": "ann", "items": ["pot-1", "unknown", "pan-1", "mug-1"]})
    h.status(r, 200, "rank")
    h.eq([i["product_id"] for i in r.json["items"]][0], "mug-1", "rank first")
    h.eq(r.json["items"][-1]["product_id"], "unknown", "unknown ids last")
    # errors and auth
    h.error(reco(s, {"strategy": "nope"}), 422, "invalid_field", at="strategy")
    h.error(reco(s, {"n": 0}), 422, "invalid_field", at="n")
    h.error(reco(s, {"filters": {"categories": "Garden"}}), 422, "invalid_field")
    h.error(reco(s, "not json"), 400, "bad_json")
    h.error(reco(s, {}, key="wrong"), 401, "unauthorized")
    h.error(reco(s, {}, key=s.admin_key), 403, "forbidden")
    h.error(s.collect("/v1/rank", {"items": ["x"] * 1001}), 413, "too_large")
    h.status(s.request("GET", "/v1/recommendations"), 405, "GET")
    h.eq(s.stop(), 0, "server exit")


def test_periodic_training_and_erasure():
    s = start("--train-interval", "1s")
    order(s, "zed", 1, ["seed-1"], day=20)
    order(s, "zed", 2, ["seed-1", "pot-1"], day=21)
    deadline = time.time() + 60
    while True:
        r = reco(s, {"userId": "zed", "strategy": "buy_again", "n": 1})
        if r.status == 200 and r.json["model_version"] >= 2 and ids(r) == ["seed-1"]:
            break
        assert time.time() < deadline, "no new snapshot with zed's orders: %r" % r
        time.sleep(0.3)
    version = r.json["model_version"]
    h.status(s.admin("DELETE", "/v1/admin/profiles/zed"), 200, "erase zed")
    order(s, "zed", 3, ["mug-1"], day=25)  # the same id comes back as a new person
    deadline = time.time() + 60
    while True:
        r = reco(s, {"userId": "zed", "strategy": "buy_again", "n": 3})
        if r.status == 200 and r.json["model_version"] > version + 1:
            break
        assert time.time() < deadline, "no snapshot after the erasure: %r" % r
        time.sleep(0.3)
    got = ids(r)
    h.eq(got[0], "mug-1", "only the new person's purchase")
    assert got[1:] and all(i["source"] != "buy_again" for i in r.json["items"][1:]), r.json
    h.eq(s.stop(), 0, "server exit")
    assert len([f for f in os.listdir(os.path.join(DATA, "models"))
                if f.endswith(".bin")]) <= 3, "old snapshots are pruned"


def test_eval_on_real_data():
    if not os.path.exists(RETAIL):
        raise h.Skip("../shared/data/online-retail/online_retail.csv.zst is absent")
    p = subprocess.run([BIN, "eval", "--format", "online-retail", "--cutoff", "2011-09-01",
                        "--no-progress", RETAIL], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    rows = {ln.split()[0]: [float(x) for x in ln.split()[1:4]]
            for ln in p.stdout.splitlines() if ln and ln.split()[0] in
            ("personalized", "popular", "random", "ease", "buy_again")}
    assert rows["personalized"][0] > rows["ease"][0] > rows["popular"][0] > rows["random"][0], rows
    assert rows["personalized"][0] >= 0.34, rows


if __name__ == "__main__":
    h.run(dict(globals()), None, teardown)
