#!/usr/bin/env python3
"""Recommendations end to end: events and products in over HTTP, no model yet
(503), `bespoke train` on the stopped server's data, then serving with every
filter, rank, errors and auth; the periodic training job swapping a newer
snapshot in while the server runs; and an erased visitor's history gone
from the next snapshot; a lookalike audience listed and saved as a segment
with members, bundles with their price, popularity within a segment,
attribute affinities (from orders and quiz answers) and their filter, and the
recommendation counters of /metrics. With ../shared/data, `bespoke eval` on
a slice.
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


COLOURED = [
    {"id": "cup-r", "name": "Red cup", "category": "Kitchen > Cups", "price": 4,
     "attributes": {"colour": "red"}},
    {"id": "cup-b", "name": "Blue cup", "category": "Kitchen > Cups", "price": 4.5,
     "attributes": {"colour": "blue"}},
    {"id": "jug-r", "name": "Red jug", "category": "Kitchen > Jugs", "price": 11,
     "attributes": {"colour": "red"}},
    {"id": "jug-b", "name": "Blue jug", "category": "Kitchen > Jugs", "price": 12,
     "attributes": {"colour": "blue"}},
    {"id": "rake", "name": "Rake", "category": "Garden > Tools", "price": 20},
    {"id": "hose", "name": "Hose", "category": "Garden > Tools", "price": 25},
    {"id": "spade", "name": "Spade", "category": "Garden > Tools", "price": 18},
]


def identify(s, user, traits):
    h.success(s.collect("/v1/identify", {"userId": user, "traits": traits}), "identify")


def test_lookalike_bundle_affinity():
    import json
    shutil_data = h.temp_dir()
    s = h.Server(BIN, data_dir=shutil_data,
                 extra_args=["--train-interval", "0", "--affinity-attributes", "colour"]).start()
    SERVERS.append(s)
    h.status(s.admin("POST", "/v1/admin/products", "\n".join(json.dumps(p) for p in COLOURED)),
             200, "products")
    h.status(s.admin("PUT", "/v1/admin/segments/seed_gardeners",
                     {"condition": "traits.seed = true"}), 200, "seed segment")
    kitchen = [["cup-r", "jug-r"], ["cup-b", "jug-b"], ["cup-r", "cup-b"], ["jug-r", "jug-b"]]
    garden = [["rake", "hose"], ["hose", "spade"], ["rake", "spade"], ["rake", "hose", "spade"]]
    for i in range(12):
        identify(s, "gardener%d" % i, {"seed": i < 4})
        order(s, "gardener%d" % i, 1, garden[i % 4], day=1 + i % 20)
        order(s, "cook%d" % i, 1, kitchen[i % 4], day=1 + i % 20)
    identify(s, "ann", {"quiz": {"colour": "blue"}})
    order(s, "ann", 1, ["cup-b", "rake"], day=22)
    h.eq(s.stop(), 0, "server exit")
    p = subprocess.run([BIN, "train", "--data", shutil_data, "--holdout-days", "0"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "user_vectors" in p.stdout, p.stdout
    s = h.Server(BIN, data_dir=shutil_data,
                 extra_args=["--train-interval", "0", "--affinity-attributes", "colour"]).start()
    SERVERS.append(s)

    # lookalikes: the other gardeners come first, never the seed's own
    r = s.admin("GET", "/v1/admin/segments/seed_gardeners/lookalike?n=8")
    h.status(r, 200, "lookalike %r" % r)
    got = [x["userId"] for x in r.json["profiles"]]
    h.eq(r.json["seed_size"], 4, "seed size")
    h.eq(sorted(got), sorted("gardener%d" % i for i in range(4, 12)), "lookalikes")
    assert r.json["profiles"][0]["score"] >= r.json["profiles"][-1]["score"], r.json
    h.error(s.admin("GET", "/v1/admin/segments/seed_gardeners/lookalike?n=0"), 400,
            "bad_request", at="n")
    h.error(s.admin("GET", "/v1/admin/segments/nope/lookalike"), 404, "not_found")
    h.error(s.collect("/v1/admin/segments/seed_gardeners/lookalike", {}), 401, "unauthorized")
    # saved as an automatic segment, listed with its members
    r = s.admin("POST", "/v1/admin/segments/seed_gardeners/lookalike",
                {"size": 5, "into": "garden_lookalikes", "exclude_seed": True})
    h.status(r, 200, "save lookalike %r" % r)
    h.eq((r.json["segment"], r.json["size"]), ("garden_lookalikes", 5), "saved")
    r = s.admin("GET", "/v1/admin/segments/garden_lookalikes")
    h.status(r, 200, "the new segment")
    h.eq(r.json.get("kind"), "automatic", "kind")
    r = s.admin("GET", "/v1/admin/segments/garden_lookalikes/members?format=jsonl")
    members = [json.loads(ln)["userId"] for ln in r.body.decode().splitlines() if ln]
    h.eq(len(members), 5, "members")
    assert all(m.startswith("gardener") and int(m[8:]) >= 4 for m in members), members
    listed = [x["id"] for x in s.admin("GET", "/v1/admin/segments").json["segments"]]
    assert "garden_lookalikes" in listed, listed
    h.error(s.admin("POST", "/v1/admin/segments/seed_gardeners/lookalike",
                    {"size": 2, "into": "seed_gardeners"}), 400, "bad_request", at="into")
    h.error(s.admin("POST", "/v1/admin/segments/garden_lookalikes/lookalike",
                    {"size": 2, "into": "seed_gardeners"}), 409, "conflict", at="into")
    h.error(s.admin("POST", "/v1/admin/segments/seed_gardeners/lookalike", {"size": 0}), 422,
            "invalid_field", at="size")

    # bundles: the anchor and its complements, with the summed price
    r = reco(s, {"strategy": "bundle", "items": ["rake"], "n": 2})
    h.status(r, 200, "bundle %r" % r)
    b = r.json["bundle"]
    h.eq(b["product_ids"][0], "rake", "anchor first")
    h.eq(len(b["product_ids"]), 3, "two complements")
    prices = {p["id"]: p["price"] for p in COLOURED}
    h.eq(b["price"], sum(prices[i] for i in b["product_ids"]), "summed price")
    assert b["price_complete"] and r.json["items"][0]["source"] == "anchor", r.json
    r = reco(s, {"strategy": "bought_together", "items": ["hose"], "n": 3})
    assert r.json["bundle"]["product_ids"][0] == "hose", r.json
    h.error(reco(s, {"strategy": "bundle"}), 400, "bad_request", at="items")

    # popularity within a segment
    got = ids(reco(s, {"strategy": "popular", "segment": "garden_lookalikes", "n": 3}))
    assert set(got) <= {"rake", "hose", "spade"}, got
    h.error(reco(s, {"strategy": "popular", "segment": "nope"}), 404, "not_found", at="segment")

    # affinities: ann's quiz says blue; her order had a blue cup
    r = reco(s, {"userId": "ann", "n": 10, "filters": {"match_affinity": True}})
    h.status(r, 200, "affinity filter")
    colour = r.json["affinities"]["colour"]
    h.eq((colour[0]["value"], colour[0].get("quiz")), ("blue", True), "affinities shown")
    got = ids(r)
    assert "cup-r" not in got and "jug-r" not in got and "jug-b" in got, got
    r = s.collect("/v1/rank", {"userId": "ann", "items": ["jug-r", "jug-b"]})
    h.eq(r.json["items"][0]["product_id"], "jug-b", "rank boosted by affinity")

    # /metrics
    text = s.request("GET", "/metrics").body.decode()
    assert 'bespoke_reco_requests_total{strategy="bundle"} 1' in text, text[-2000:]
    assert "bespoke_reco_snapshot_version 1" in text, text[-2000:]
    assert "bespoke_reco_latency_seconds_count" in text
    assert text.count("# TYPE bespoke_decide_latency_seconds histogram") == 1
    h.eq(s.stop(), 0, "server exit")


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
