#!/usr/bin/env python3
"""Campaigns, placements and decisions over HTTP: admin CRUD with its
validation errors, the seed's examples as written campaigns (first-order
coupon modal, "searched lantern -> banner", "added to cart -> hide the
free-shipping teaser"), priority, schedule, frequency caps fed by
/v1/events impressions, a coupon pool handed out exactly once under
concurrent decisions (and after a restart), consent (profile, request,
--require-consent), /v1/events with forged tokens, limits and metrics.
Usage: test_campaigns.py PATH/TO/bespoke"""

import datetime
import json
import os
import sys
import threading

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

BIN = h.binary_from_argv()
S = None
SERVERS = []
_msg = [0]


def setup():
    global S
    S = h.Server(BIN).start()
    SERVERS.append(S)


def teardown():
    h.stop_all(SERVERS)


def iso(delta_s):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=delta_s)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def put(kind, cid, body, want=(200, 201)):
    r = S.admin("PUT", "/v1/admin/%s/%s" % (kind, cid), body)
    assert r.status in want, "PUT %s/%s: %r" % (kind, cid, r)
    return r


def campaign(cid, placement, content, **fields):
    body = {"placement": placement, "status": "active", "content": content}
    body.update(fields)
    return put("campaigns", cid, body)


def decide(anon, placements, context=None, user=None, server=None, key=None):
    body = {"anonymousId": anon, "placements": placements}
    if user:
        body["userId"] = user
    if context is not None:
        body["context"] = context
    r = (server or S).collect("/v1/decide", body, key=key)
    h.status(r, 200, "decide %s %s" % (anon, placements))
    return r.json["decisions"]


def arrive(anon, placements, server=None, context=None):
    """A visitor's page view as the SDK makes it: a page event, then the
    decision for the page, which sees every event acknowledged before it."""
    _msg[0] += 1
    page = {"anonymousId": anon, "name": "Home", "messageId": "it-page-%d" % _msg[0]}
    if context:
        page["context"] = context
    h.success((server or S).collect("/v1/page", page), "page")
    return decide(anon, placements, server=server)


def chosen(anon, placement, **kw):
    d = decide(anon, [placement], **kw)[placement]
    return d["campaign"], d["variant"]


def track(anon, event, props=None, context=None, server=None):
    _msg[0] += 1
    m = {"anonymousId": anon, "event": event, "properties": props or {},
         "messageId": "it-campaign-%d" % _msg[0]}
    if context:
        m["context"] = context
    h.success((server or S).collect("/v1/track", m), "track %s" % event)


# --- admin ---------------------------------------------------------------------

def test_admin_auth():
    for method, path in (("GET", "/v1/admin/campaigns"), ("POST", "/v1/admin/campaigns"),
                         ("PUT", "/v1/admin/campaigns/x"), ("DELETE", "/v1/admin/campaigns/x"),
                         ("GET", "/v1/admin/placements"), ("PUT", "/v1/admin/placements/x")):
        h.error(S.request(method, path, {}), 401, "unauthorized", what=method + " " + path)
        h.error(S.request(method, path, {}, {"Authorization": "Bearer " + h.WRITE_KEY}), 403,
                "forbidden", what=method + " " + path + " write key")


def test_validation_errors():
    cases = [
        ({"placement": "p", "content": {"type": "banner"}}, "content"),
        ({"content": {"type": "banner", "title": "x"}}, "placement"),
        ({"placement": "p", "status": "live", "content": {"type": "banner", "title": "x"}},
         "status"),
        ({"placement": "p", "condition": "computed.orders = = 0",
          "content": {"type": "banner", "title": "x"}}, "condition: line 1, column 19"),
        ({"placement": "p", "condition": "foo(1)",
          "content": {"type": "banner", "title": "x"}}, "condition: line 1, column 1"),
        ({"placement": "p", "cap": {"total": 0}, "content": {"type": "banner", "title": "x"}},
         "cap.total"),
        ({"placement": "p", "content": {"type": "coupon", "pool": ["ok", ""]}},
         "content.pool[1]"),
        ({"placement": "p", "start": iso(60), "end": iso(0),
          "content": {"type": "banner", "title": "x"}}, "end"),
    ]
    for body, at in cases:
        e = h.error(S.admin("PUT", "/v1/admin/campaigns/v", body), 422, "invalid_field", at=at,
                    what=json.dumps(body)[:80])
        assert e["message"], e
    h.error(S.admin("PUT", "/v1/admin/campaigns/bad%20id", {}), 400, "bad_request", at="id")
    h.error(S.admin("POST", "/v1/admin/campaigns", "{"), 400, "bad_json")
    h.error(S.admin("GET", "/v1/admin/campaigns/nope"), 404, "not_found")
    h.error(S.admin("DELETE", "/v1/admin/campaigns/nope"), 404, "not_found")


def test_crud():
    body = {"id": "crud", "placement": "p_crud", "content": {"type": "banner", "title": "x"}}
    h.status(S.admin("POST", "/v1/admin/campaigns", body), 201, "create")
    h.error(S.admin("POST", "/v1/admin/campaigns", body), 409, "conflict")
    r = S.admin("GET", "/v1/admin/campaigns/crud")
    h.status(r, 200, "get")
    h.eq(r.json["status"], "draft", "default status")
    h.eq(chosen("crud-v", "p_crud"), (None, "default"), "a draft is not shown")
    body["status"] = "active"
    h.status(S.admin("PUT", "/v1/admin/campaigns/crud", body), 200, "replace")
    h.eq(chosen("crud-v", "p_crud"), ("crud", "treatment"), "active now")
    ids = [c["id"] for c in S.admin("GET", "/v1/admin/campaigns?placement=p_crud").json["campaigns"]]
    h.eq(ids, ["crud"], "list by placement")
    h.status(S.admin("DELETE", "/v1/admin/campaigns/crud"), 200, "delete")
    h.eq(chosen("crud-v", "p_crud"), (None, "default"), "deleted")


# --- the seed's examples ------------------------------------------------------------

def test_first_order_coupon_modal():
    put("placements", "home_modal", {"default": None})
    campaign("welcome_coupon", "home_modal",
             {"type": "coupon", "title": "Welcome!", "text": "10% off your first order",
              "code": "WELCOME10"}, condition="computed.orders = 0", priority=10)
    d = arrive("first-timer", ["home_modal"])["home_modal"]
    h.eq((d["campaign"], d["variant"], d["content"]["code"]),
         ("welcome_coupon", "treatment", "WELCOME10"), "a first-time visitor")
    track("first-timer", "Order Completed",
          {"order_id": "o-1", "total": 20, "products": [{"product_id": "p1", "price": 20}]})
    d = decide("first-timer", ["home_modal"])["home_modal"]
    h.eq((d["campaign"], d["variant"], d["content"]), (None, "default", None), "after an order")


def test_searched_lantern_shows_banner():
    put("placements", "search_banner", {"default": {"type": "banner", "title": "Sale"}})
    campaign("lantern_banner", "search_banner", {"type": "banner", "title": "Lanterns",
                                                 "image": "/img/lantern.jpg"},
             condition='did("Products Searched", 30m, properties.query contains "lantern")')
    d = arrive("searcher", ["search_banner"])["search_banner"]
    h.eq((d["campaign"], d["content"]["title"]), (None, "Sale"), "before searching")
    track("searcher", "Products Searched", {"query": "sofa"})
    h.eq(chosen("searcher", "search_banner"), (None, "default"), "another search")
    track("searcher", "Products Searched", {"query": "white hanging lantern"})
    d = decide("searcher", ["search_banner"])["search_banner"]
    h.eq((d["campaign"], d["content"]["title"]), ("lantern_banner", "Lanterns"), "after lantern")


def test_new_visitors_first_event_reaches_the_next_decision():
    """No decision was made for the visitor before, and the event is not
    stored yet (the checkpoint comes within a second): the writer published
    the new profile with the event's commit, since the server has readers."""
    put("placements", "first_banner", {"default": {"type": "banner", "title": "Sale"}})
    campaign("first_lantern", "first_banner", {"type": "banner", "title": "Lanterns"},
             condition='did("Products Searched", 30m, properties.query contains "lantern")')
    decide("someone-else", ["first_banner"])  # the server has readers
    for n in range(5):
        anon = "first-searcher-%d" % n
        track(anon, "Products Searched", {"query": "lantern"})
        h.eq(chosen(anon, "first_banner"), ("first_lantern", "treatment"),
             "%s right after its first event" % anon)


def memo_counts():
    text = S.request("GET", "/metrics").body.decode()
    got = {}
    for line in text.splitlines():
        if line.startswith("bespoke_profile_memo_"):
            name, value = line.split()
            got[name] = int(value)
    return (got.get("bespoke_profile_memo_hits_total"),
            got.get("bespoke_profile_memo_misses_total"), got.get("bespoke_profile_memo_profiles"),
            got.get("bespoke_profile_memo_unread_hits_total"))


def test_decisions_reuse_the_parsed_profile():
    """The second decision for an unchanged visitor takes the memo's parsed
    profile (either HTTP thread: the memo is shared) and says so in /metrics."""
    put("placements", "memo_slot", {"default": {"type": "banner", "title": "Sale"}})
    track("memo-visitor", "Product Viewed", {"product_id": "m1"})
    decide("memo-visitor", ["memo_slot"])
    hits0, misses0, held, unread0 = memo_counts()
    assert hits0 is not None and misses0 is not None, "memo counters in /metrics"
    assert held is not None and held >= 1, "bespoke_profile_memo_profiles: %r" % held
    assert unread0 is not None, "bespoke_profile_memo_unread_hits_total in /metrics"
    for _ in range(4):
        decide("memo-visitor", ["memo_slot"])
    hits1, misses1, held1, unread1 = memo_counts()
    h.eq((hits1 - hits0) + (misses1 - misses0), 4, "memo reads of 4 decisions")
    # (a background segment pass could change the profile once in between)
    assert hits1 - hits0 >= 3, "memo hits of 4 decisions: %d" % (hits1 - hits0)
    # Unchanged since the first of them: answered without reading the store.
    assert unread1 - unread0 >= 2, "unread hits of 4 decisions: %d" % (unread1 - unread0)
    # A new event is seen by the next decision all the same.
    campaign("memo_after", "memo_slot", {"type": "banner", "title": "Viewed two"},
             condition="computed.product_views >= 2")
    track("memo-visitor", "Product Viewed", {"product_id": "m2"})
    h.eq(chosen("memo-visitor", "memo_slot"), ("memo_after", "treatment"),
         "the decision right after a new event")
    # Erasure drops the parsed copy too.
    h.status(S.admin("DELETE", "/v1/admin/profiles/memo-visitor"), 200, "erase memo-visitor")
    h.eq(memo_counts()[2], held1 - 1, "bespoke_profile_memo_profiles after the erasure")


def test_add_to_cart_hides_teaser():
    put("placements", "shipping_teaser", {"default": {"type": "toggle", "show": ["#free-ship"]}})
    campaign("hide_teaser", "shipping_teaser", {"type": "toggle", "hide": ["#free-ship"]},
             condition="computed.cart_items > 0")
    d = arrive("shopper", ["shipping_teaser"])["shipping_teaser"]
    h.eq(d["content"], {"type": "toggle", "show": ["#free-ship"]}, "empty cart")
    track("shopper", "Product Added", {"product_id": "p1", "price": 5, "quantity": 1})
    d = decide("shopper", ["shipping_teaser"])["shipping_teaser"]
    h.eq((d["campaign"], d["content"]["hide"]), ("hide_teaser", ["#free-ship"]), "after add")


# --- rules ------------------------------------------------------------------------------

def test_priority_and_context():
    campaign("prio_low", "prio", {"type": "banner", "title": "low"}, priority=1)
    campaign("prio_high", "prio", {"type": "banner", "title": "high"}, priority=5,
             condition='context.page.type = "product"')
    h.eq(chosen("prio-v", "prio", context={"page": {"type": "product"}}), ("prio_high", "treatment"),
         "higher priority when its condition holds")
    h.eq(chosen("prio-v", "prio", context={"page": {"type": "home"}}), ("prio_low", "treatment"),
         "next one otherwise")


def test_schedule():
    campaign("sched", "sched_p", {"type": "banner", "title": "s"}, start=iso(3600))
    h.eq(chosen("sched-v", "sched_p"), (None, "default"), "not started")
    campaign("sched", "sched_p", {"type": "banner", "title": "s"}, start=iso(-60), end=iso(3600))
    h.eq(chosen("sched-v", "sched_p"), ("sched", "treatment"), "running")
    campaign("sched", "sched_p", {"type": "banner", "title": "s"}, start=iso(-7200), end=iso(-3600))
    h.eq(chosen("sched-v", "sched_p"), (None, "default"), "ended")


def report(anon, token, kind="impression", key=None):
    return S.collect("/v1/events", {"type": kind, "token": token, "anonymousId": anon}, key=key)


def test_frequency_cap_via_events():
    campaign("capped", "cap_p", {"type": "banner", "title": "c"}, cap={"per_day": 2, "total": 5})
    for i in range(2):
        d = decide("cap-v", ["cap_p"])["cap_p"]
        h.eq(d["campaign"], "capped", "view %d" % (i + 1))
        h.success(report("cap-v", d["token"]), "impression %d" % (i + 1))
    h.eq(chosen("cap-v", "cap_p"), (None, "default"), "capped after two views today")
    h.eq(chosen("cap-other", "cap_p"), ("capped", "treatment"), "others still see it")
    events = S.all_events("cap-v")
    views = [e for e in events if e.get("event") == "Promotion Viewed"]
    h.eq(len(views), 2, "impressions stored as Promotion Viewed")
    h.eq(views[0]["properties"]["promotion_id"], "capped", "promotion_id")
    h.eq(views[0]["properties"]["creative"], "cap_p", "creative")


def test_control_share_stable():
    campaign("half", "ctl_p", {"type": "banner", "title": "h"}, control=0.5)
    seen = {}
    for i in range(60):
        v = "ctl-%d" % i
        seen[v] = chosen(v, "ctl_p")
    control = sum(1 for c in seen.values() if c == ("half", "control"))
    assert 12 <= control <= 48, "control share of 60: %d" % control
    for v, c in list(seen.items())[:15]:
        h.eq(chosen(v, "ctl_p"), c, "stable for %s" % v)
    d = next(decide(v, ["ctl_p"])["ctl_p"] for v, c in seen.items() if c[1] == "control")
    assert d["token"], "a control visitor gets a token: %r" % d


# --- coupon pool ---------------------------------------------------------------------------

POOL = ["POOL-%02d" % i for i in range(20)]


def test_pool_exactly_once_concurrent():
    campaign("pool", "pool_p", {"type": "coupon", "title": "Yours", "pool": POOL})
    got = {}
    lock = threading.Lock()
    errors = []

    def worker(w):
        try:
            for i in range(5):
                v = "pool-%d-%d" % (w, i)
                d = decide(v, ["pool_p"])["pool_p"]
                with lock:
                    got[v] = d["content"].get("code") if d["campaign"] else None
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    codes = [c for c in got.values() if c]
    h.eq(len(codes), len(POOL), "codes handed out")
    h.eq(sorted(codes), sorted(POOL), "each code exactly once")
    lucky = next(v for v, c in got.items() if c)
    h.eq(decide(lucky, ["pool_p"])["pool_p"]["content"]["code"], got[lucky], "same code again")
    h.eq(chosen("pool-late", "pool_p"), (None, "default"), "empty pool no longer matches")
    r = S.admin("GET", "/v1/admin/campaigns/pool")
    h.eq(r.json["content"]["pool_remaining"], 0, "pool_remaining")
    # after a restart: the same visitor, the same code; still none for others
    S.stop()
    S.start()
    h.eq(decide(lucky, ["pool_p"])["pool_p"]["content"]["code"], got[lucky], "after a restart")
    h.eq(chosen("pool-late2", "pool_p"), (None, "default"), "still empty after a restart")


# --- consent -----------------------------------------------------------------------------------

def test_consent():
    campaign("consent_c", "consent_p", {"type": "banner", "title": "c"})
    h.eq(chosen("c-yes", "consent_p"), ("consent_c", "treatment"), "unstated consent")
    arrive("c-no", ["consent_p"])
    track("c-no", "Page Viewed", context={"consent": {"categoryPreferences":
                                                      {"personalization": False}}})
    h.eq(chosen("c-no", "consent_p"), (None, "default"), "denied on the profile")
    denied = {"consent": {"categoryPreferences": {"personalization": False}}}
    h.eq(chosen("c-yes", "consent_p", context=denied), (None, "default"), "denied in the request")


def test_require_consent_flag():
    for how in ("flag", "env"):
        srv = h.Server(BIN, extra_args=["--require-consent"] if how == "flag" else [],
                       env={"BESPOKE_REQUIRE_CONSENT": "1"} if how == "env" else None).start()
        SERVERS.append(srv)
        r = srv.admin("PUT", "/v1/admin/campaigns/all",
                      {"placement": "p", "status": "active",
                       "content": {"type": "banner", "title": "x"}})
        h.status(r, 201, "create on the %s server" % how)
        d = arrive("rc-v", ["p"], server=srv)["p"]
        h.eq((d["campaign"], d["variant"]), (None, "default"), "%s: unstated consent" % how)
        track("rc-v", "Page Viewed", server=srv,
              context={"consent": {"categoryPreferences": {"personalization": True}}})
        d = decide("rc-v", ["p"], server=srv)["p"]
        h.eq((d["campaign"], d["variant"]), ("all", "treatment"), "%s: granted" % how)
        code = srv.stop()
        h.eq(code, 0, "exit code")


# --- /v1/events ------------------------------------------------------------------------------

def test_events_tokens():
    campaign("ev_c", "ev_p", {"type": "banner", "title": "e"})
    token = decide("ev-v", ["ev_p"])["ev_p"]["token"]
    h.success(report("ev-v", token, "click"), "a real token")
    head, payload, sig = token.split(".")
    forged_payload = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB")
    for forged in (head + "." + forged_payload + "." + sig, token[:-3] + "abc", "v1.e30.AAAA",
                   "nonsense"):
        h.error(report("ev-v", forged), 403, "forbidden", at="token", what="forged " + forged[-8:])
    h.error(report("ev-v", token, key="wk_wrong"), 401, "unauthorized")
    h.error(S.request("POST", "/v1/events", {"type": "click", "token": token,
                                             "anonymousId": "ev-v"}), 401, "unauthorized")
    h.error(report("ev-v", token, "hover"), 422, "invalid_field", at="type")
    clicks = [e for e in S.all_events("ev-v") if e.get("event") == "Promotion Clicked"]
    h.eq(len(clicks), 1, "only the real click stored")


# --- limits and operations ------------------------------------------------------------------------

def test_limits():
    big = {"anonymousId": "x", "placements": ["p"], "pad": "x" * (33 * 1024)}
    h.error(S.raw_request("POST", "/v1/decide", big, {"Authorization": h.basic_auth(h.WRITE_KEY)}),
            413, "too_large")
    many = {"anonymousId": "x", "placements": ["p%d" % i for i in range(17)]}
    h.error(S.collect("/v1/decide", many), 413, "too_large", at="placements")
    h.error(S.collect("/v1/decide", "{"), 400, "bad_json")
    anonymous = S.collect("/v1/decide", {"placements": ["p"]})  # no ids: defaults only
    h.status(anonymous, 200)
    h.eq(anonymous.json["decisions"]["p"]["variant"], "default")
    h.error(S.request("POST", "/v1/decide", {"anonymousId": "x", "placements": []}), 401,
            "unauthorized")
    h.error(S.collect("/v1/decide", {"anonymousId": "x", "placements": []}, key=h.ADMIN_KEY), 403,
            "forbidden")
    r = S.request("POST", "/v1/decide?writeKey=" + h.WRITE_KEY,
                  {"anonymousId": "x", "placements": ["p"]})
    h.status(r, 200, "write key in the query")


def test_metrics():
    decide("m-v", ["p"])
    r = S.request("GET", "/metrics")
    text = r.body.decode()
    assert "bespoke_decide_latency_seconds_count" in text, text[-500:]
    assert 'route="/v1/decide",status="200"' in text


h.run(globals(), setup, teardown)
