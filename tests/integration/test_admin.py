#!/usr/bin/env python3
"""Admin API: identity merge via identify and via alias, computed traits with
hand-checked numbers, timeline pagination, export, erasure (and adding again
afterwards), stats, products (CRUD, bulk JSONL, learnt from events), admin
authentication, and SIGTERM then restart on the same data directory.
Usage: test_admin.py PATH/TO/bespoke"""

import json
import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

BIN = h.binary_from_argv()
S = None
SERVERS = []
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def setup():
    global S
    S = h.Server(BIN).start()
    SERVERS.append(S)


def teardown():
    h.stop_all(SERVERS)


def send(path, body):
    r = S.collect(path, body)
    h.success(r, "POST %s %s" % (path, json.dumps(body)[:80]))
    return r


def track(mid, ts, event, props=None, user=None, anon=None, context=None):
    m = {"messageId": mid, "timestamp": ts, "event": event, "properties": props or {}}
    if user:
        m["userId"] = user
    if anon:
        m["anonymousId"] = anon
    if context:
        m["context"] = context
    return send("/v1/track", m)


def page(mid, ts, user=None, anon=None, context=None, name="Home"):
    m = {"messageId": mid, "timestamp": ts, "name": name}
    if user:
        m["userId"] = user
    if anon:
        m["anonymousId"] = anon
    if context:
        m["context"] = context
    return send("/v1/page", m)


def identify(mid, ts, user, anon=None, traits=None, context=None):
    m = {"messageId": mid, "timestamp": ts, "userId": user, "traits": traits or {}}
    if anon:
        m["anonymousId"] = anon
    if context:
        m["context"] = context
    return send("/v1/identify", m)


def prof(pid):
    r = S.profile(pid)
    h.status(r, 200, "GET profile %s" % pid)
    return r.json


def computed_subset(c, want, who):
    for k, v in want.items():
        if isinstance(v, float):
            h.close_money(c.get(k), v, "%s computed.%s" % (who, k), tol=0.0051)
        else:
            h.eq(c.get(k), v, "%s computed.%s" % (who, k))


# --- stats on an empty store --------------------------------------------------

def test_stats_empty():
    h.eq(S.stats(), {"profiles": 0, "events": 0, "products": 0, "identities": 0, "last_seq": 0},
         "stats of a new store")


# --- auth ----------------------------------------------------------------------

def test_admin_auth():
    calls = [("GET", "/v1/admin/stats", None), ("GET", "/v1/admin/profiles/x", None),
             ("GET", "/v1/admin/profiles/x/events", None),
             ("GET", "/v1/admin/profiles/x/export", None),
             ("DELETE", "/v1/admin/profiles/x", None),
             ("PUT", "/v1/admin/products/p", {"id": "p", "name": "n"}),
             ("GET", "/v1/admin/products/p", None), ("DELETE", "/v1/admin/products/p", None),
             ("POST", "/v1/admin/products", '{"id":"p"}\n')]
    for method, path, body in calls:
        what = "%s %s" % (method, path)
        h.error(S.request(method, path, body), 401, "unauthorized", what=what + " no key")
        h.error(S.request(method, path, body, {"Authorization": "Bearer ak_wrong"}), 401,
                "unauthorized", what=what + " wrong key")
        h.error(S.request(method, path, body, {"Authorization": "Bearer " + h.WRITE_KEY}), 403,
                "forbidden", what=what + " write key")
    h.error(S.request("GET", "/v1/admin/stats", None, {"Authorization": "Bearer"}), 401,
            "unauthorized", what="empty bearer")
    h.error(S.request("GET", "/v1/admin/stats", None,
                      {"Authorization": h.basic_auth(h.ADMIN_KEY).replace("Basic", "Token")}),
            401, "unauthorized", what="other scheme")
    h.status(S.request("GET", "/v1/admin/products/p", None,
                       {"Authorization": "Bearer " + h.ADMIN_KEY}), 404, "with the right key")
    h.eq(S.stats()["products"], 0, "nothing written by refused calls")


def test_unknown_profile_404():
    for path in ("/v1/admin/profiles/nobody", "/v1/admin/profiles/nobody/events",
                 "/v1/admin/profiles/nobody/export"):
        h.error(S.admin("GET", path), 404, "not_found", what=path)
    h.error(S.admin("DELETE", "/v1/admin/profiles/nobody"), 404, "not_found", what="DELETE")


# --- identity -----------------------------------------------------------------------

def test_identity_merge_via_identify():
    u, a = "alice", "anon-alice"
    st0 = S.stats()
    identify("al-1", "2024-06-01T08:00:00.000Z", u,
             traits={"email": "alice@example.com", "name": "Alice", "quiz": {"style": "classic"}})
    track("al-2", "2024-06-01T08:05:00.000Z", "Order Completed",
          {"order_id": "A1", "revenue": 50,
           "products": [{"product_id": "pa", "price": 50, "quantity": 1, "category": "Shoes",
                         "brand": "Stride"}]}, user=u)
    page("al-3", "2024-06-02T09:00:00.000Z", anon=a)
    track("al-4", "2024-06-02T09:01:00.000Z", "Product Viewed",
          {"product_id": "pb", "price": 80, "category": "Bags", "brand": "Carry"}, anon=a)
    track("al-5", "2024-06-02T09:02:00.000Z", "Product Added",
          {"product_id": "pb", "price": 80, "quantity": 1, "category": "Bags",
           "brand": "Carry"}, anon=a)
    track("al-6", "2024-06-02T09:03:00.000Z", "Products Searched", {"query": "tote"}, anon=a)
    known, anon = prof(u), prof(a)
    assert known["profile_id"] != anon["profile_id"], "two profiles before identify"
    h.eq(anon["ids"], {"userId": [], "anonymousId": [a]}, "anonymous ids before")
    h.eq(S.stats()["profiles"], st0["profiles"] + 2, "profiles before the merge")

    identify("al-7", "2024-06-02T09:05:00.000Z", u, anon=a, traits={"plan": "gold"},
             context={"consent": {"categoryPreferences": {"marketing": True,
                                                          "analytics": False}}})
    p1, p2 = prof(u), prof(a)
    h.eq(p1, p2, "userId and anonymousId give the same profile")
    h.eq(p1["profile_id"], known["profile_id"], "the anonymous profile joined the known one")
    h.eq(p1["ids"], {"userId": [u], "anonymousId": [a]}, "ids")
    h.eq(p1["traits"], {"email": "alice@example.com", "name": "Alice",
                        "quiz": {"style": "classic"}, "plan": "gold"}, "traits")
    h.eq(p1["consent"].get("marketing"), True, "consent.marketing")
    h.eq(p1["consent"].get("analytics"), False, "consent.analytics")
    computed_subset(p1["computed"], {
        "first_seen": "2024-06-01T08:00:00.000Z", "last_seen": "2024-06-02T09:05:00.000Z",
        "sessions": 2, "page_views": 1, "product_views": 1, "add_to_carts": 1,
        "cart_items": 1, "cart_value": 80.0, "orders": 1, "revenue": 50.0, "aov": 50.0,
        "last_order_at": "2024-06-01T08:05:00.000Z", "recently_viewed": ["pb"],
        "purchased": ["pa"], "last_search": "tote", "favorite_category": "Shoes",
        "favorite_brand": "Stride"}, "merged")
    h.eq(p1["computed"]["cart"], [{"product_id": "pb", "quantity": 1, "price": 80}], "cart")
    h.eq(S.stats()["profiles"], st0["profiles"] + 1, "profiles after the merge")
    h.eq(S.stats()["identities"], st0["identities"] + 2, "identities after the merge")
    evs = S.all_events(u)
    h.eq([e["messageId"] for e in evs], ["al-7", "al-6", "al-5", "al-4", "al-3", "al-2", "al-1"],
         "timeline newest first with the anonymous history")
    h.eq(S.all_events(a), evs, "timeline by the anonymous id")
    # later events under either id land on the merged profile
    track("al-8", "2024-06-02T09:10:00.000Z", "Product Viewed", {"product_id": "pc"}, anon=a)
    track("al-9", "2024-06-02T09:11:00.000Z", "Product Viewed", {"product_id": "pd"}, user=u)
    p = prof(u)
    h.eq(p["computed"]["product_views"], 3, "product_views after later events")
    h.eq(p["computed"]["recently_viewed"], ["pd", "pc", "pb"], "recently_viewed")
    h.eq(len(S.all_events(a)), 9, "timeline length")
    h.eq(S.stats()["profiles"], st0["profiles"] + 1, "no new profile for later events")


def test_identity_merge_via_alias():
    u, a, old = "bob", "anon-bob", "bob-legacy-id"
    st0 = S.stats()
    track("bo-1", "2024-06-03T10:00:00.000Z", "Product Viewed",
          {"product_id": "px", "price": 5}, anon=a)
    page("bo-2", "2024-06-03T10:01:00.000Z", anon=a)
    identify("bo-3", "2024-06-03T12:00:00.000Z", u, traits={"email": "bob@example.com"})
    track("bo-4", "2024-06-03T12:01:00.000Z", "Order Completed",
          {"order_id": "B1", "revenue": 20, "products": [{"product_id": "py", "price": 20}]},
          user=u)
    track("bo-5", "2024-06-01T12:00:00.000Z", "Order Completed",
          {"order_id": "B0", "revenue": 30}, user=old)
    h.eq(S.stats()["profiles"], st0["profiles"] + 3, "three profiles before alias")
    assert prof(a)["profile_id"] != prof(u)["profile_id"], "separate before alias"

    send("/v1/alias", {"messageId": "bo-6", "timestamp": "2024-06-03T12:02:00.000Z",
                       "previousId": a, "userId": u})
    p = prof(u)
    h.eq(prof(a), p, "alias: previousId resolves to the userId's profile")
    h.eq(p["ids"], {"userId": [u], "anonymousId": [a]}, "ids after alias")
    computed_subset(p["computed"], {"product_views": 1, "page_views": 1, "orders": 1,
                                    "revenue": 20.0, "recently_viewed": ["px"],
                                    "purchased": ["py"], "sessions": 2,
                                    "first_seen": "2024-06-03T10:00:00.000Z"}, "alias")
    h.eq(p["traits"], {"email": "bob@example.com"}, "traits after alias")
    h.eq(sorted(e["messageId"] for e in S.all_events(u)),
         ["bo-1", "bo-2", "bo-3", "bo-4", "bo-6"], "timeline after alias")
    # previousId naming an earlier userId
    send("/v1/a", {"messageId": "bo-7", "timestamp": "2024-06-03T12:03:00.000Z",
                   "previousId": old, "userId": u})
    p = prof(old)
    h.eq(p, prof(u), "alias of an earlier userId")
    h.eq(sorted(p["ids"]["userId"]), sorted([u, old]), "both userIds")
    computed_subset(p["computed"], {"orders": 2, "revenue": 50.0, "aov": 25.0,
                                    "first_seen": "2024-06-01T12:00:00.000Z",
                                    "last_order_at": "2024-06-03T12:01:00.000Z"}, "alias 2")
    h.eq(len(S.all_events(a)), 7, "timeline after the second alias")
    h.eq(S.stats()["profiles"], st0["profiles"] + 1, "one profile left")


# --- computed traits -------------------------------------------------------------------

CAROL_EVENTS = []


def test_computed_traits():
    a, u = "anon-carol", "carol"
    ua = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")
    d1, d2 = "2024-07-01T", "2024-07-02T"
    lamp = {"product_id": "p1", "name": "Lamp", "category": "Home > Lighting", "brand": "Lumo",
            "price": 25}
    desk = {"product_id": "p2", "name": "Desk", "category": "Home > Furniture", "brand": "Oak",
            "price": 40}
    page("ca-01", d1 + "10:00:00.000Z", anon=a, context={"userAgent": ua})
    track("ca-02", d1 + "10:01:00.000Z", "Product Viewed", lamp, anon=a)
    track("ca-03", d1 + "10:02:00.000Z", "Product Viewed", desk, anon=a)
    track("ca-04", d1 + "10:03:00.000Z", "Product Viewed", lamp, anon=a)
    track("ca-05", d1 + "10:04:00.000Z", "Products Searched", {"query": "lamp"}, anon=a)
    track("ca-06", d1 + "10:05:00.000Z", "Product Added", dict(lamp, quantity=2), anon=a)
    track("ca-07", d1 + "10:06:00.000Z", "Product Added", dict(desk, quantity=1), anon=a)
    track("ca-08", d1 + "10:07:00.000Z", "Product Removed", {"product_id": "p1", "quantity": 1},
          anon=a)
    c = prof(a)["computed"]
    computed_subset(c, {"sessions": 1, "page_views": 1, "product_views": 3, "add_to_carts": 2,
                        "cart_items": 2, "cart_value": 65.0, "orders": 0, "revenue": 0.0,
                        "aov": 0.0, "last_order_at": None, "recently_viewed": ["p1", "p2"],
                        "purchased": [], "last_search": "lamp", "device": "mobile",
                        "country": None, "first_seen": d1 + "10:00:00.000Z",
                        "last_seen": d1 + "10:07:00.000Z"}, "before identify")
    h.eq(sorted(c["cart"], key=lambda x: x["product_id"]),
         [{"product_id": "p1", "quantity": 1, "price": 25},
          {"product_id": "p2", "quantity": 1, "price": 40}], "cart before identify")

    identify("ca-09", d1 + "12:00:00.000Z", u, anon=a,
             traits={"email": "carol@example.com",
                     "quiz": {"style": "minimal", "budget": {"max": 100}}},
             context={"consent": {"categoryPreferences": {"marketing": False,
                                                          "analytics": True}}})
    track("ca-10", d1 + "12:01:00.000Z", "Products Searched", {"query": "desk lamp"}, user=u)
    track("ca-11", d1 + "12:02:00.000Z", "Order Completed",
          {"order_id": "o1", "revenue": 65, "currency": "USD",
           "products": [dict(lamp, quantity=1), dict(desk, quantity=1)]}, user=u)
    c = prof(u)["computed"]
    computed_subset(c, {"orders": 1, "revenue": 65.0, "cart_items": 0, "cart_value": 0.0,
                        "cart": [], "purchased": ["p1", "p2"], "sessions": 2,
                        "last_search": "desk lamp"}, "after the first order")

    page("ca-12", d2 + "09:00:00.000Z", user=u, context={"location": {"country": "FR"}})
    track("ca-13", d2 + "09:01:00.000Z", "Product Added",
          {"product_id": "p3", "price": 10, "quantity": 3, "category": "Garden",
           "brand": "Verde"}, user=u)
    c = prof(u)["computed"]
    computed_subset(c, {"cart_items": 3, "cart_value": 30.0, "add_to_carts": 3}, "new cart")
    h.eq(c["cart"], [{"product_id": "p3", "quantity": 3, "price": 10}], "cart with p3")
    # revenue falls back to total, then to the sum of products
    track("ca-14", d2 + "09:02:00.000Z", "Order Completed",
          {"order_id": "o2", "total": 100, "products": [{"product_id": "p3", "price": 10,
                                                        "quantity": 3}]}, user=u)
    track("ca-15", d2 + "09:03:00.000Z", "Order Refunded", {"order_id": "o2", "revenue": 30},
          user=u)
    track("ca-16", d2 + "09:04:00.000Z", "Order Completed",
          {"order_id": "o3", "products": [{"product_id": "p4", "price": 12.5, "quantity": 2},
                                          {"product_id": "p1", "price": 25}]}, user=u)
    track("ca-17", d2 + "09:05:00.000Z", "Order Cancelled", {"order_id": "o3", "total": 20},
          user=u)
    identify("ca-18", d2 + "09:06:00.000Z", u, traits={"quiz": {"style": "boho"}})
    CAROL_EVENTS[:] = ["ca-%02d" % i for i in range(1, 19)]

    p = prof(a)
    h.eq(p, prof(u), "both ids, one profile")
    h.eq(p["ids"], {"userId": [u], "anonymousId": [a]}, "ids")
    c = p["computed"]
    computed_subset(c, {
        "first_seen": d1 + "10:00:00.000Z", "last_seen": d2 + "09:06:00.000Z",
        "sessions": 3, "page_views": 2, "product_views": 3, "add_to_carts": 3,
        "cart_items": 0, "cart_value": 0.0, "cart": [], "orders": 3,
        "revenue": 165.0,            # 65 + 100 - 30 + 50 - 20
        "aov": 55.0,                 # 165 / 3
        "last_order_at": d2 + "09:04:00.000Z",
        "favorite_category": "Home > Lighting", "favorite_brand": "Lumo",
        "recently_viewed": ["p1", "p2"], "purchased": ["p1", "p2", "p3", "p4"],
        "last_search": "desk lamp", "country": "FR", "device": "mobile"}, "carol")
    keys = {"first_seen", "last_seen", "sessions", "page_views", "product_views",
            "add_to_carts", "cart_items", "cart_value", "cart", "orders", "revenue", "aov",
            "last_order_at", "favorite_category", "favorite_brand", "recently_viewed",
            "purchased", "last_search", "country", "device"}
    missing = keys - set(c)
    assert not missing, "computed lacks %s" % sorted(missing)
    t = p["traits"]
    h.eq(t.get("email"), "carol@example.com", "traits.email kept")
    h.eq(t.get("quiz", {}).get("style"), "boho", "traits.quiz.style (nested, latest)")
    h.eq(p["consent"].get("marketing"), False, "consent.marketing")
    h.eq(p["consent"].get("analytics"), True, "consent.analytics")
    # consent changes with a later event of any type
    track("ca-19", d2 + "09:07:00.000Z", "Consent Changed", {}, user=u,
          context={"consent": {"categoryPreferences": {"marketing": True, "analytics": True}}})
    CAROL_EVENTS.append("ca-19")
    h.eq(prof(u)["consent"].get("marketing"), True, "consent updated")


def test_aov_rounding():
    u = "dora"
    for i, amount in enumerate([10, 10, 10.01]):
        track("do-%d" % i, "2024-08-01T10:0%d:00.000Z" % i, "Order Completed",
              {"order_id": "d%d" % i, "revenue": amount}, user=u)
    computed_subset(prof(u)["computed"], {"orders": 3, "revenue": 30.01, "aov": 10.0},
                    "dora")
    h.eq(prof(u)["computed"]["aov"], 10.0, "aov rounded to cents")


# --- events, export --------------------------------------------------------------------

def test_events_pagination():
    u = "carol"
    full = S.admin("GET", "/v1/admin/profiles/%s/events?limit=1000" % u)
    h.status(full, 200)
    allev = full.json["events"]
    h.eq(full.json.get("next_cursor"), None, "next_cursor when everything fit")
    h.eq(len(allev), len(CAROL_EVENTS), "event count")
    h.eq([e["messageId"] for e in allev], list(reversed(CAROL_EVENTS)), "newest first")
    seqs = [e["seq"] for e in allev]
    h.eq(seqs, sorted(seqs, reverse=True), "seq descending")
    h.eq(len(set(seqs)), len(seqs), "seq unique")
    pages, cursor, got = 0, None, []
    while True:
        path = "/v1/admin/profiles/%s/events?limit=5" % u
        if cursor is not None:
            path += "&cursor=" + cursor
        r = S.admin("GET", path)
        h.status(r, 200, path)
        pages += 1
        assert len(r.json["events"]) <= 5, "page longer than limit"
        got.extend(r.json["events"])
        cursor = r.json["next_cursor"]
        if cursor is None:
            break
        assert isinstance(cursor, str), "next_cursor must be a string: %r" % cursor
        h.eq(cursor, str(r.json["events"][-1]["seq"]), "cursor = last seq of the page")
        assert pages < 20, "pagination does not end"
    h.eq(got, allev, "pages joined == whole timeline")
    h.eq(pages, 4, "19 events in pages of 5")
    ev = allev[0]
    h.eq(ev.get("type"), "track", "event type")
    h.eq(ev.get("userId"), u, "event userId")
    h.eq(ev.get("event"), "Consent Changed", "event name")
    dflt = S.admin("GET", "/v1/admin/profiles/%s/events" % u)
    h.status(dflt, 200, "events without limit")
    h.eq(dflt.json["events"], allev, "events with the default limit")
    one = S.admin("GET", "/v1/admin/profiles/%s/events?limit=1" % u)
    h.eq(one.json["events"], allev[:1], "limit=1")
    h.eq(one.json["next_cursor"], str(allev[0]["seq"]), "cursor after limit=1")
    for bad in ("0", "1001", "-1", "abc"):
        h.error(S.admin("GET", "/v1/admin/profiles/%s/events?limit=%s" % (u, bad)), 400,
                "bad_request", what="limit=%s" % bad)
    # by the anonymous id, the same timeline
    h.eq(S.all_events("anon-carol", limit=7), allev, "timeline by anonymousId")


def test_export():
    r = S.admin("GET", "/v1/admin/profiles/anon-carol/export")
    h.status(r, 200, "export")
    j = r.json
    h.eq(sorted(j), ["events", "exported_at", "profile"], "export keys")
    assert ISO.match(j["exported_at"]), "exported_at: %r" % j["exported_at"]
    h.eq(j["profile"], prof("carol"), "export.profile")
    h.eq(sorted(e["messageId"] for e in j["events"]), sorted(CAROL_EVENTS), "export.events")
    for e in j["events"]:
        assert "writeKey" not in e, "export holds a write key"


# --- erasure ---------------------------------------------------------------------------

def test_erasure():
    u, a = "erin", "anon-erin"
    track("er-1", "2024-09-01T10:00:00.000Z", "Product Viewed", {"product_id": "pe"}, anon=a)
    identify("er-2", "2024-09-01T10:01:00.000Z", u, anon=a, traits={"email": "erin@x.org"})
    track("er-3", "2024-09-01T10:02:00.000Z", "Order Completed",
          {"order_id": "e1", "revenue": 99}, user=u)
    track("er-4", "2024-09-01T10:03:00.000Z", "Product Viewed", {"product_id": "pf"}, user=u)
    st0 = S.stats()
    r = S.admin("DELETE", "/v1/admin/profiles/" + a)
    h.status(r, 200, "DELETE by anonymousId")
    h.eq(r.json, {"deleted": True, "events_deleted": 4}, "DELETE answer")
    for pid in (u, a):
        h.error(S.profile(pid), 404, "not_found", what="profile %s after erasure" % pid)
        h.error(S.admin("GET", "/v1/admin/profiles/%s/export" % pid), 404, "not_found",
                what="export %s after erasure" % pid)
        h.error(S.admin("GET", "/v1/admin/profiles/%s/events" % pid), 404, "not_found",
                what="events %s after erasure" % pid)
    st1 = S.stats()
    h.eq(st1["profiles"], st0["profiles"] - 1, "profiles after erasure")
    h.eq(st1["events"], st0["events"] - 4, "events after erasure")
    h.eq(st1["identities"], st0["identities"] - 2, "identities after erasure")
    h.eq(st1["last_seq"], st0["last_seq"], "last_seq is not reused")
    h.error(S.admin("DELETE", "/v1/admin/profiles/" + u), 404, "not_found", what="DELETE twice")
    # the person comes back: a fresh profile
    track("er-5", "2024-09-02T10:00:00.000Z", "Product Viewed", {"product_id": "pg"}, user=u)
    p = prof(u)
    h.eq(p["ids"], {"userId": [u], "anonymousId": []}, "ids of the new profile")
    h.eq(p["traits"], {}, "no old traits")
    computed_subset(p["computed"], {"orders": 0, "revenue": 0.0, "product_views": 1,
                                    "recently_viewed": ["pg"], "sessions": 1,
                                    "first_seen": "2024-09-02T10:00:00.000Z"}, "new profile")
    evs = S.all_events(u)
    h.eq([e["messageId"] for e in evs], ["er-5"], "new timeline")
    assert evs[0]["seq"] > st0["last_seq"], "a new seq"
    h.status(S.profile(a), 404, "the old anonymousId stays unknown")
    st2 = S.stats()
    h.eq((st2["profiles"], st2["events"], st2["identities"]),
         (st1["profiles"] + 1, st1["events"] + 1, st1["identities"] + 1), "stats after re-adding")


def test_erasure_by_user_id_of_merged_profile():
    # merged profile (alias) is erased whole, by its userId
    st0 = S.stats()
    n_events = len(S.all_events("bob"))
    r = S.admin("DELETE", "/v1/admin/profiles/bob")
    h.status(r, 200)
    h.eq(r.json, {"deleted": True, "events_deleted": n_events}, "DELETE bob")
    for pid in ("bob", "anon-bob", "bob-legacy-id"):
        h.status(S.profile(pid), 404, "profile %s after erasure" % pid)
    st1 = S.stats()
    h.eq(st1["identities"], st0["identities"] - 3, "identities")
    h.eq(st1["events"], st0["events"] - n_events, "events")


# --- products ----------------------------------------------------------------------------

LANTERN = {"id": "sku-1", "name": "Lantern", "category": ["Home", "Lighting", "Lanterns"],
           "brand": "Lumo", "price": 19.99, "currency": "EUR", "in_stock": True,
           "url": "https://shop.example.com/p/sku-1", "image": "https://cdn.example.com/1.jpg",
           "tags": ["outdoor", "gift"], "attributes": {"color": "black", "height_cm": 30}}


def test_products_crud():
    st0 = S.stats()
    r = S.admin("PUT", "/v1/admin/products/sku-1", LANTERN)
    h.status(r, 200, "PUT product")
    want = dict(LANTERN, category="Home > Lighting > Lanterns")
    stored = r.json
    assert ISO.match(stored.get("updated_at", "")), "updated_at: %r" % stored
    got = {k: v for k, v in stored.items() if k != "updated_at"}
    h.eq(got, want, "stored product")
    g = S.admin("GET", "/v1/admin/products/sku-1")
    h.status(g, 200)
    h.eq(g.json, stored, "GET == PUT answer")
    h.eq(S.stats()["products"], st0["products"] + 1, "stats.products")
    # update replaces; id may come from the path only
    r = S.admin("PUT", "/v1/admin/products/sku-1", {"name": "Lantern XL", "price": 29})
    h.status(r, 200, "PUT without id")
    h.eq(r.json["id"], "sku-1", "id from the path")
    h.eq(r.json["name"], "Lantern XL", "new name")
    h.eq(S.admin("GET", "/v1/admin/products/sku-1").json["price"], 29, "new price")
    h.eq(S.stats()["products"], st0["products"] + 1, "update does not add")
    # ids with reserved characters
    r = S.admin("PUT", "/v1/admin/products/" + h.quote("a/b c"), {"name": "Slash"})
    h.status(r, 200, "PUT id with a slash")
    h.eq(r.json["id"], "a/b c", "decoded id")
    h.eq(S.admin("GET", "/v1/admin/products/" + h.quote("a/b c")).json["name"], "Slash", "GET")
    # bad products
    bad = [({"price": "cheap"}, "price"), ({"price": -1}, "price"),
           ({"tags": ["ok", 3]}, "tags[1]"), ({"in_stock": "yes"}, "in_stock"),
           ({"name": 5}, "name"), ({"category": ["a", 1]}, "category[1]"),
           ({"currency": "euro"}, "currency"), ({"attributes": []}, "attributes"),
           ({"id": "other"}, "id")]
    for body, at in bad:
        h.error(S.admin("PUT", "/v1/admin/products/sku-bad", body), 422, "invalid_field", at=at,
                what="PUT %s" % json.dumps(body))
    h.error(S.admin("PUT", "/v1/admin/products/sku-bad", "{nope"), 400, "bad_json")
    h.error(S.admin("PUT", "/v1/admin/products/sku-bad", "[1]"), 400, "bad_request")
    h.status(S.admin("GET", "/v1/admin/products/sku-bad"), 404, "nothing stored")
    # delete
    r = S.admin("DELETE", "/v1/admin/products/" + h.quote("a/b c"))
    h.status(r, 200, "DELETE product")
    h.error(S.admin("GET", "/v1/admin/products/" + h.quote("a/b c")), 404, "not_found")
    h.error(S.admin("DELETE", "/v1/admin/products/" + h.quote("a/b c")), 404, "not_found",
            what="DELETE twice")
    h.eq(S.stats()["products"], st0["products"] + 1, "stats.products after delete")


def test_products_bulk_jsonl():
    st0 = S.stats()
    lines = [json.dumps({"id": "bulk-1", "name": "One", "price": 1}),
             json.dumps({"id": "bulk-2", "price": -5}),
             json.dumps({"id": "bulk-3", "name": "Three", "tags": ["x"]}),
             '{"id": "bulk-4", oops}',
             "",
             json.dumps({"name": "no id"}),
             json.dumps({"id": "bulk-1", "name": "One again", "price": 2})]
    r = S.admin("POST", "/v1/admin/products", "\n".join(lines) + "\n",
                headers={"Content-Type": "application/x-ndjson"})
    h.status(r, 200, "bulk")
    h.eq(r.json.get("upserted"), 3, "upserted")
    rej = r.json.get("rejected")
    h.eq([(x["line"], x["error"]["code"]) for x in rej],
         [(2, "invalid_field"), (4, "bad_json"), (6, "invalid_field")], "rejected lines")
    h.eq(rej[0]["error"].get("at"), "price", "line 2 at")
    h.eq(rej[2]["error"].get("at"), "id", "line 6 at")
    h.eq(S.admin("GET", "/v1/admin/products/bulk-1").json["name"], "One again", "last wins")
    h.eq(S.admin("GET", "/v1/admin/products/bulk-3").json["tags"], ["x"], "bulk-3")
    h.status(S.admin("GET", "/v1/admin/products/bulk-2"), 404, "rejected line not stored")
    h.eq(S.stats()["products"], st0["products"] + 2, "stats.products")
    # gzip bulk
    body = "\n".join(json.dumps({"id": "gz-%d" % i, "name": "G%d" % i}) for i in range(50))
    r = S.admin("POST", "/v1/admin/products", h.gzip_bytes(body.encode()),
                headers={"Content-Encoding": "gzip"})
    h.status(r, 200, "gzip bulk")
    h.eq((r.json.get("upserted"), r.json.get("rejected")), (50, []), "gzip bulk answer")
    h.eq(S.stats()["products"], st0["products"] + 52, "stats.products after gzip bulk")


def test_products_learnt_from_events():
    st0 = S.stats()
    track("pl-1", "2024-10-01T10:00:00.000Z", "Product Viewed",
          {"product_id": "learn-1", "name": "Vase", "price": 30, "category": "Decor",
           "brand": "Clay", "url": "https://shop/v", "image_url": "https://cdn/v.jpg"},
          user="frank")
    track("pl-2", "2024-10-01T10:01:00.000Z", "Order Completed",
          {"order_id": "f1", "revenue": 12,
           "products": [{"product_id": "learn-2", "name": "Cup", "price": 6, "quantity": 2},
                        {"sku": "learn-3", "name": "Saucer", "price": 4}]}, user="frank")
    r = S.admin("GET", "/v1/admin/products/learn-1")
    h.status(r, 200, "learnt product")
    for k, v in {"id": "learn-1", "name": "Vase", "price": 30, "category": "Decor",
                 "brand": "Clay", "url": "https://shop/v"}.items():
        h.eq(r.json.get(k), v, "learn-1.%s" % k)
    h.eq(S.admin("GET", "/v1/admin/products/learn-2").json.get("name"), "Cup", "from products[]")
    h.eq(S.admin("GET", "/v1/admin/products/learn-3").json.get("name"), "Saucer", "by sku")
    h.eq(S.stats()["products"], st0["products"] + 3, "stats.products")
    # the writer remembers facts it has merged; a deleted product is learnt
    # again from an event that repeats them exactly
    vase = {"product_id": "learn-1", "name": "Vase", "price": 30, "category": "Decor",
            "brand": "Clay", "url": "https://shop/v", "image_url": "https://cdn/v.jpg"}
    track("pl-1b", "2024-10-01T10:00:30.000Z", "Product Viewed", vase, user="frank")
    h.status(S.admin("DELETE", "/v1/admin/products/learn-1"), 200, "delete learnt product")
    h.status(S.admin("GET", "/v1/admin/products/learn-1"), 404, "deleted")
    track("pl-1c", "2024-10-01T10:03:00.000Z", "Product Viewed", vase, user="frank")
    h.eq(S.admin("GET", "/v1/admin/products/learn-1").json.get("name"), "Vase", "learnt again")
    # explicit catalog values win over what events say
    h.status(S.admin("PUT", "/v1/admin/products/sku-2", {"name": "Official", "price": 10}), 200)
    track("pl-3", "2024-10-01T10:02:00.000Z", "Product Viewed",
          {"product_id": "sku-2", "name": "Rumour", "price": 1}, user="frank")
    g = S.admin("GET", "/v1/admin/products/sku-2").json
    h.eq((g.get("name"), g.get("price")), ("Official", 10), "explicit values kept")


# --- durability across a restart -------------------------------------------------------------

def test_sigterm_and_restart_keeps_everything():
    global S
    before_stats = S.stats()
    before_carol = prof("carol")
    before_events = S.all_events("carol")
    before_product = S.admin("GET", "/v1/admin/products/sku-1").json
    code = S.stop()
    h.eq(code, 0, "exit code on SIGTERM; log:\n" + S.log_tail())
    S2 = h.Server(BIN, data_dir=S.data_dir).start()
    SERVERS.append(S2)
    S = S2
    h.eq(S.stats(), before_stats, "stats after restart")
    # Segment memberships may change at a start (the high_value threshold is
    # recomputed then); everything recorded must be the same.
    after_carol = prof("anon-carol")
    after_carol.pop("segments")
    before_carol.pop("segments")
    h.eq(after_carol, before_carol, "profile after restart")
    h.eq(S.all_events("carol"), before_events, "timeline after restart")
    h.eq(S.admin("GET", "/v1/admin/products/sku-1").json, before_product, "product")
    # and it keeps working, with de-duplication remembered: an SDK resends the
    # same message, timestamp included (the dedup key is messageId + its hour)
    h.success(S.collect("/v1/track", {"userId": "carol", "event": "Order Completed",
                                      "timestamp": "2024-07-01T12:02:00.000Z",
                                      "messageId": "ca-11", "properties": {"revenue": 65}}))
    h.eq(S.stats()["events"], before_stats["events"], "resent messageId after restart")
    track("ca-20", "2024-07-02T09:08:00.000Z", "Product Viewed", {"product_id": "p9"}, user="carol")
    h.eq(prof("carol")["computed"]["product_views"], 4, "new event after restart")


if __name__ == "__main__":
    h.run(dict(globals()), setup, teardown)
