#!/usr/bin/env python3
"""Collection API: every route and short form, the three write-key placements,
every error status with its code and position, CORS, gzip, text/plain bodies,
de-duplication, batch policy and context merge, RudderStack's shape and
/beacon/v1/batch, 429 when the ingest queue is full, /healthz, /metrics, 404
and 405. Usage: test_collect.py PATH/TO/bespoke"""

import http.client
import json
import os
import re
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

BIN = h.binary_from_argv()
S = None          # the main server
SERVERS = []
_n = [0]


def uid(tag):
    _n[0] += 1
    return "%s-%d" % (tag, _n[0])


def timeline(pid):
    return S.all_events(pid)


def only_event(pid):
    evs = timeline(pid)
    h.eq(len(evs), 1, "events of %s" % pid)
    return evs[0]


def msg_ids(pid):
    return [e.get("messageId") for e in timeline(pid)]


def batch_ok(r, n, what=""):
    """A batch without rejects: {"success":true}, optionally with accepted == n
    and rejected == [] (the contract gives the counts when messages were rejected)."""
    h.success(r, what)
    if "accepted" in r.json or "rejected" in r.json:
        h.eq(r.json.get("accepted"), n, "%s accepted" % what)
        h.eq(r.json.get("rejected"), [], "%s rejected" % what)
    else:
        h.eq(r.json, {"success": True}, what)


def setup():
    global S
    S = h.Server(BIN).start()
    SERVERS.append(S)


def teardown():
    h.stop_all(SERVERS)


# --- basics ------------------------------------------------------------------

def test_healthz():
    r = S.request("GET", "/healthz")
    h.status(r, 200)
    h.eq(r.json, {"status": "ok"}, "healthz body")


def _message(kind, user):
    ts = "2024-03-01T10:00:00.000Z"
    if kind == "track":
        return {"userId": user, "event": "Signed Up", "properties": {"plan": "pro"},
                "timestamp": ts}
    if kind == "identify":
        return {"userId": user, "traits": {"email": user + "@example.com"}, "timestamp": ts}
    if kind == "page":
        return {"userId": user, "name": "Home", "properties": {"url": "https://shop/x"},
                "timestamp": ts}
    if kind == "screen":
        return {"userId": user, "name": "Cart", "timestamp": ts}
    if kind == "group":
        return {"userId": user, "groupId": "g-" + user, "traits": {"name": "Acme"},
                "timestamp": ts}
    if kind == "alias":
        return {"userId": user, "previousId": "prev-" + user, "timestamp": ts}
    raise ValueError(kind)


ROUTES = [("track", "/v1/track"), ("track", "/v1/t"), ("identify", "/v1/identify"),
          ("identify", "/v1/i"), ("page", "/v1/page"), ("page", "/v1/p"),
          ("screen", "/v1/screen"), ("screen", "/v1/s"), ("group", "/v1/group"),
          ("group", "/v1/g"), ("alias", "/v1/alias"), ("alias", "/v1/a")]


def test_every_route_and_short_form():
    for kind, path in ROUTES:
        user = uid("route-" + kind)
        m = _message(kind, user)
        m["messageId"] = "mid-" + user
        r = S.collect(path, m)
        h.success(r, "POST %s" % path)
        ev = only_event(user)
        h.eq(ev.get("type"), kind, "type stored for %s" % path)
        h.eq(ev.get("messageId"), "mid-" + user, "messageId stored for %s" % path)
        h.eq(ev.get("userId"), user, "userId stored for %s" % path)
        h.eq(ev.get("timestamp"), "2024-03-01T10:00:00.000Z", "timestamp for %s" % path)
        assert isinstance(ev.get("seq"), int) and ev["seq"] >= 1, "seq of %r" % ev
        assert "writeKey" not in ev, "writeKey stored: %r" % ev
        if kind == "track":
            h.eq(ev.get("event"), "Signed Up", "event name")
            h.eq(ev.get("properties"), {"plan": "pro"}, "properties")
        if kind in ("page", "screen"):
            h.eq(ev.get("name"), m["name"], "page/screen name")
        if kind == "alias":
            h.eq(ev.get("previousId"), "prev-" + user, "previousId")
            # alias links previousId to the same profile
            r = S.profile("prev-" + user)
            h.status(r, 200, "profile by previousId")
            h.eq(r.json["profile_id"], S.profile(user).json["profile_id"], "alias profile")
        if kind == "identify":
            h.eq(S.profile(user).json["traits"].get("email"), user + "@example.com", "trait")


def test_batch_route_and_short_form():
    for path in ("/v1/batch", "/v1/b"):
        user = uid("batch")
        body = {"batch": [
            {"type": "identify", "userId": user, "traits": {"name": "B"}},
            {"type": "track", "userId": user, "event": "E1"},
            {"type": "page", "userId": user, "name": "P"},
            {"type": "screen", "userId": user, "name": "S"},
            {"type": "group", "userId": user, "groupId": "g1"},
            {"type": "alias", "userId": user, "previousId": "old-" + user},
        ]}
        r = S.collect(path, body)
        batch_ok(r, 6, "POST %s" % path)
        types = sorted(e["type"] for e in timeline(user))
        h.eq(types, ["alias", "group", "identify", "page", "screen", "track"], "types")


def test_bare_array_batch():
    user = uid("bare")
    r = S.collect("/v1/batch", [{"type": "track", "userId": user, "event": "A"},
                                {"type": "track", "userId": user, "event": "B"}])
    h.success(r)
    h.eq(sorted(e["event"] for e in timeline(user)), ["A", "B"], "events")


def test_generated_message_id_and_received_at():
    user = uid("gen")
    h.success(S.collect("/v1/track", {"userId": user, "event": "X"}))
    ev = only_event(user)
    assert re.fullmatch(r"bsp-[0-9a-f]{32}", ev.get("messageId", "")), \
        "generated messageId: %r" % ev.get("messageId")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ev.get("receivedAt", "")), \
        "receivedAt: %r" % ev.get("receivedAt")
    h.eq(ev.get("timestamp"), ev.get("receivedAt"), "timestamp defaults to receivedAt")


def test_numeric_user_id_becomes_string():
    n = 900000 + _n[0]
    h.success(S.collect("/v1/identify", {"userId": n, "traits": {"a": 1}}))
    r = S.profile(str(n))
    h.status(r, 200, "profile by numeric id")
    h.eq(r.json["ids"]["userId"], [str(n)], "ids.userId")


def test_ids_with_reserved_characters():
    user = "user/with slash?&=%20 \u00e9\u4e2d"
    h.success(S.collect("/v1/identify", {"userId": user, "traits": {"ok": True}}))
    r = S.profile(user)
    h.status(r, 200, "profile by a percent-encoded id")
    h.eq(r.json["ids"]["userId"], [user], "id round trip")
    h.eq(len(timeline(user)), 1, "timeline by a percent-encoded id")


def test_anonymous_only():
    anon = uid("anon")
    h.success(S.collect("/v1/page", {"anonymousId": anon, "name": "Home"}))
    r = S.profile(anon)
    h.status(r, 200)
    h.eq(r.json["ids"], {"userId": [], "anonymousId": [anon]}, "ids")


# --- write key -----------------------------------------------------------------

def test_write_key_in_basic_auth():
    user = uid("wk-basic")
    h.success(S.request("POST", "/v1/track", {"userId": user, "event": "K"},
                        {"Authorization": h.basic_auth(h.WRITE_KEY)}))
    only_event(user)


def test_write_key_in_body():
    user = uid("wk-body")
    h.success(S.request("POST", "/v1/track",
                        {"userId": user, "event": "K", "writeKey": h.WRITE_KEY}))
    ev = only_event(user)
    assert "writeKey" not in ev, "the write key was stored: %r" % ev
    user2 = uid("wk-batchbody")
    h.success(S.request("POST", "/v1/batch",
                        {"writeKey": h.WRITE_KEY,
                         "batch": [{"type": "track", "userId": user2, "event": "K"}]}))
    only_event(user2)


def test_write_key_in_query():
    user = uid("wk-query")
    h.success(S.request("POST", "/v1/track?writeKey=" + h.WRITE_KEY,
                        {"userId": user, "event": "K"}))
    only_event(user)


def test_missing_or_wrong_write_key_401():
    user = uid("wk-bad")
    cases = [
        ("no key", "/v1/track", {"userId": user, "event": "K"}, {}),
        ("wrong basic", "/v1/track", {"userId": user, "event": "K"},
         {"Authorization": h.basic_auth("wk_wrong")}),
        ("wrong body key", "/v1/track", {"userId": user, "event": "K", "writeKey": "nope"}, {}),
        ("wrong query key", "/v1/track?writeKey=nope", {"userId": user, "event": "K"}, {}),
        ("no key batch", "/v1/batch", {"batch": [{"type": "track", "userId": user,
                                                  "event": "K"}]}, {}),
        ("no key beacon", "/beacon/v1/batch", {"batch": [{"type": "track", "userId": user,
                                                          "event": "K"}]}, {}),
    ]
    for what, path, body, hdrs in cases:
        h.error(S.request("POST", path, body, hdrs), 401, "unauthorized", what=what)
    # the admin key is a valid key, but not for collection (like the write key on admin)
    h.error(S.request("POST", "/v1/track", {"userId": user, "event": "K"},
                      {"Authorization": h.basic_auth(h.ADMIN_KEY)}), 403, "forbidden",
            what="admin key as write key")
    h.status(S.profile(user), 404, "nothing stored without a key")


# --- bodies ----------------------------------------------------------------------

def test_text_plain_body():
    user = uid("plain")
    body = json.dumps({"userId": user, "event": "Beacon", "writeKey": h.WRITE_KEY})
    h.success(S.request("POST", "/v1/track", body, {"Content-Type": "text/plain;charset=UTF-8"}))
    h.eq(only_event(user).get("event"), "Beacon", "event")
    user2 = uid("noct")
    h.success(S.request("POST", "/v1/t", json.dumps({"userId": user2, "event": "NoCT"}),
                        {"Authorization": h.basic_auth(h.WRITE_KEY)}))
    only_event(user2)


def test_form_content_type_is_still_json():
    user = uid("form")
    body = json.dumps({"userId": user, "event": "Form", "writeKey": h.WRITE_KEY})
    h.success(S.request("POST", "/v1/track", body,
                        {"Content-Type": "application/x-www-form-urlencoded"}))
    h.eq(only_event(user).get("event"), "Form", "event")


def test_chunked_upload_and_expect_continue():
    user = uid("chunked")
    body = {"batch": [{"type": "track", "userId": user, "event": "C%d" % i,
                       "properties": {"pad": "z" * 500}} for i in range(40)]}
    data = json.dumps(body).encode()
    conn = h.http.client.HTTPConnection("127.0.0.1", S.port, timeout=60)
    try:
        conn.request("POST", "/v1/batch", body=iter([data[i:i + 4096]
                                                    for i in range(0, len(data), 4096)]),
                     headers={"Authorization": h.basic_auth(h.WRITE_KEY),
                              "Transfer-Encoding": "chunked"}, encode_chunked=True)
        r = conn.getresponse()
        rb = r.read()
    finally:
        conn.close()
    h.eq(r.status, 200, "chunked upload status (%r)" % rb[:200])
    h.eq(len(timeline(user)), 40, "events from a chunked upload")
    user2 = uid("expect")
    r = S.raw_request("POST", "/v1/track", {"userId": user2, "event": "Expect",
                                            "properties": {"pad": "e" * 3000}},
                      {"Authorization": h.basic_auth(h.WRITE_KEY), "Expect": "100-continue"})
    h.success(r, "Expect: 100-continue")
    only_event(user2)


def test_gzip_body():
    user = uid("gzip")
    body = {"batch": [{"type": "track", "userId": user, "event": "G%d" % i} for i in range(5)]}
    r = S.collect("/v1/batch", h.gzip_bytes(body), headers={"Content-Encoding": "gzip",
                                                           "Content-Type": "application/json"})
    batch_ok(r, 5, "gzip batch")
    h.eq(len(timeline(user)), 5, "events stored")
    user2 = uid("gzip1")
    r = S.collect("/v1/track", h.gzip_bytes({"userId": user2, "event": "One"}),
                  headers={"Content-Encoding": "gzip"})
    h.success(r, "gzip track")
    only_event(user2)


def test_unsupported_encoding_415():
    user = uid("br")
    r = S.collect("/v1/track", json.dumps({"userId": user, "event": "X"}),
                  headers={"Content-Encoding": "br"})
    h.error(r, 415, "unsupported_media")
    h.status(S.profile(user), 404, "nothing stored")


def test_corrupt_gzip_400():
    r = S.collect("/v1/track", b"\x1f\x8b\x08\x00garbage-not-gzip",
                  headers={"Content-Encoding": "gzip"})
    h.status(r, 400, "corrupt gzip body")
    code = (r.json or {}).get("error", {}).get("code")
    assert code in ("bad_request", "bad_json"), "corrupt gzip: error code %r in %r" % (code, r)


def test_bad_json_400_with_position():
    e = h.error(S.collect("/v1/track", '{"a":1,}'), 400, "bad_json", at="line 1, column 8")
    assert e["message"], e
    h.error(S.collect("/v1/track", '{\n  "userId": "u1",\n  "event": oops\n}'), 400,
            "bad_json", at="line 3, column 12")
    h.error(S.collect("/v1/batch", '{"batch": [}'), 400, "bad_json", at="line 1, column 12")
    h.error(S.collect("/v1/track", '{"userId":"u1","event":"x"} trailing'), 400, "bad_json",
            at="line 1, column 29")


def test_body_over_500kb_413():
    user = uid("big")
    # ~600 KB of valid messages, each well under 32 KB
    msgs = [{"type": "track", "userId": user, "event": "Big",
             "properties": {"pad": "x" * 1000}} for _ in range(600)]
    r = S.raw_request("POST", "/v1/batch", {"batch": msgs},
                      {"Authorization": h.basic_auth(h.WRITE_KEY),
                       "Content-Type": "application/json"})
    h.error(r, 413, "too_large", what="600 KB body")
    h.status(S.profile(user), 404, "nothing stored from a refused body")
    # the limit is on the decoded body: a small gzip that inflates past 500 KB
    bomb = ('{"batch":[' + " " * 700000 + ']}').encode()
    r = S.collect("/v1/batch", h.gzip_bytes(bomb), headers={"Content-Encoding": "gzip"})
    h.error(r, 413, "too_large", what="gzip inflating to 700 KB")
    # just under the limit is fine
    user2 = uid("almost")
    msgs = [{"type": "track", "userId": user2, "event": "Big",
             "properties": {"pad": "x" * 1000}} for _ in range(450)]
    r = S.collect("/v1/batch", {"batch": msgs})
    batch_ok(r, 450, "450 KB body")


def test_event_over_32kb_413():
    user = uid("fat")
    r = S.collect("/v1/track", {"userId": user, "event": "Fat",
                                "properties": {"pad": "y" * 40000}})
    h.error(r, 413, "too_large", what="40 KB event")
    h.status(S.profile(user), 404, "nothing stored")
    user2 = uid("fat-ok")
    h.success(S.collect("/v1/track", {"userId": user2, "event": "Fine",
                                      "properties": {"pad": "y" * 30000}}), "30 KB event")


def test_request_header_limits():
    """A browser on the shop's own domain sends its cookies with every
    beacon: a few KB of them must fit (libmicrohttpd copies a Cookie header
    to parse it, so cookies count twice against a connection's 16 KiB), and
    so must other large headers; past the limit the answer is 431."""
    user = uid("cookies")
    cookies = "; ".join("c%d=%s" % (i, "v" * 500) for i in range(12))  # ~6 KB
    h.success(S.collect("/v1/track", {"userId": user, "event": "With cookies"},
                        headers={"Cookie": cookies}), "track with 6 KB of cookies")
    h.success(S.collect("/v1/track", {"userId": user, "event": "With a long header"},
                        headers={"X-Pad": "p" * 12000}), "track with a 12 KB header")
    h.eq(len(S.all_events(user)), 2, "both stored")
    r = S.raw_request("POST", "/v1/track", {"userId": user, "event": "Too big"},
                      {"Authorization": h.basic_auth(h.WRITE_KEY),
                       "Content-Type": "application/json", "X-Pad": "p" * 20000})
    h.status(r, 431, "20 KB of headers")
    h.eq(len(S.all_events(user)), 2, "nothing stored from the refused call")


def test_batch_over_2500_messages_413():
    user = uid("many")
    msgs = [{"type": "track", "userId": user, "event": "e"} for _ in range(2501)]
    h.error(S.collect("/v1/batch", {"batch": msgs}), 413, "too_large", what="2501 messages")
    h.status(S.profile(user), 404, "nothing stored")
    n = 1000 if h.SANITIZED else 2500
    msgs = [{"type": "track", "userId": user, "event": "e", "messageId": "%s-%d" % (user, i)}
            for i in range(n)]
    r = S.collect("/v1/batch", {"batch": msgs})
    batch_ok(r, n, "%d messages" % n)
    h.eq(len(timeline(user)), n, "events stored")


def test_invalid_fields_422():
    user = uid("inv")
    cases = [
        ("/v1/track", {"userId": user, "event": "E", "properties": "str"}, "properties"),
        ("/v1/track", {"userId": user}, "event"),
        ("/v1/track", {"userId": user, "event": 42}, "event"),
        ("/v1/track", {"event": "E"}, "userId"),
        ("/v1/track", {"userId": {"a": 1}, "event": "E"}, "userId"),
        ("/v1/identify", {"userId": user, "traits": [1, 2]}, "traits"),
        ("/v1/page", {"userId": user, "context": "ctx"}, "context"),
        ("/v1/track", {"userId": user, "event": "E", "timestamp": "yesterday"}, "timestamp"),
        ("/v1/alias", {"userId": user}, "previousId"),
        ("/v1/group", {"userId": user}, "groupId"),
        ("/v1/track", {"userId": "u" * 256, "event": "E"}, "userId"),
    ]
    for path, body, at in cases:
        h.error(S.collect(path, body), 422, "invalid_field", at=at,
                what="%s %s" % (path, json.dumps(body)[:60]))
    h.status(S.profile(user), 404, "nothing stored")


def test_batch_partial_rejects():
    user = uid("part")
    body = {"batch": [
        {"type": "track", "userId": user, "event": "Good0", "messageId": user + "-0"},
        {"type": "track", "userId": user, "event": "Bad1", "properties": "str"},
        {"type": "track", "userId": user, "event": "Good2", "messageId": user + "-2"},
        {"type": "nonsense", "userId": user},
        {"type": "track", "userId": user},
    ]}
    r = S.collect("/v1/batch", body)
    h.success(r, "partial batch")
    h.eq(r.json.get("accepted"), 2, "accepted")
    rej = r.json.get("rejected")
    assert isinstance(rej, list), "rejected: %r" % r
    h.eq([x.get("index") for x in rej], [1, 3, 4], "rejected indexes")
    for x, at in zip(rej, ["batch[1].properties", "batch[3].type", "batch[4].event"]):
        h.eq(x["error"].get("code"), "invalid_field", "reject code")
        h.eq(x["error"].get("at"), at, "reject at")
        assert x["error"].get("message"), "reject message: %r" % x
    h.eq(sorted(e["event"] for e in timeline(user)), ["Good0", "Good2"], "stored")


def test_batch_all_invalid_fails():
    user = uid("allbad")
    r = S.collect("/v1/batch", {"batch": [
        {"type": "track", "userId": user, "event": "E", "properties": "x"},
        {"type": "track", "userId": user}]})
    h.error(r, 422, "invalid_field", at="batch[0].properties", what="all invalid")
    h.status(S.profile(user), 404, "nothing stored")
    h.error(S.collect("/v1/batch", {"batch": "notarray"}), 422, "invalid_field", at="batch")
    h.error(S.collect("/v1/batch", {"nobatch": []}), 400, "bad_request")
    h.error(S.collect("/v1/track", [1, 2]), 400, "bad_request", what="array to /v1/track")


def test_dedup_on_resend():
    user = uid("dup")
    msg = {"userId": user, "event": "Order Completed", "messageId": "dup-" + user,
           "properties": {"revenue": 10}}
    before = S.stats()["events"]
    h.success(S.collect("/v1/track", msg), "first send")
    h.success(S.collect("/v1/track", msg), "resend")
    h.success(S.collect("/v1/batch", {"batch": [dict(msg, type="track")]}), "resend in batch")
    h.eq(msg_ids(user), ["dup-" + user], "timeline after resends")
    h.eq(S.stats()["events"], before + 1, "stats events")
    h.eq(S.profile(user).json["computed"]["orders"], 1, "orders counted once")
    # duplicates inside one batch
    user2 = uid("dup2")
    m = {"type": "track", "userId": user2, "event": "X", "messageId": "dd-" + user2}
    r = S.collect("/v1/batch", {"batch": [m, m, dict(m, messageId="other-" + user2)]})
    h.success(r, "batch with a repeated messageId")
    h.eq(sorted(msg_ids(user2)), ["dd-" + user2, "other-" + user2], "stored once each")


def test_batch_context_and_integrations_merge():
    user = uid("ctx")
    body = {
        "context": {"library": {"name": "lib-batch", "version": "1"}, "ip": "10.0.0.1",
                    "locale": "en-GB"},
        "integrations": {"All": False, "Mixpanel": True},
        "batch": [
            {"type": "track", "userId": user, "event": "Own", "messageId": user + "-own",
             "context": {"ip": "10.9.9.9", "library": {"version": "2"}},
             "integrations": {"Mixpanel": False}},
            {"type": "track", "userId": user, "event": "Plain", "messageId": user + "-plain"},
        ]}
    h.success(S.collect("/v1/batch", body))
    evs = {e["messageId"]: e for e in timeline(user)}
    own, plain = evs[user + "-own"], evs[user + "-plain"]
    h.eq(own["context"], {"ip": "10.9.9.9", "library": {"name": "lib-batch", "version": "2"},
                          "locale": "en-GB"}, "merged context (message wins)")
    h.eq(own["integrations"], {"All": False, "Mixpanel": False}, "merged integrations")
    h.eq(plain["context"], body["context"], "batch context copied")
    h.eq(plain["integrations"], body["integrations"], "batch integrations copied")


# --- RudderStack ---------------------------------------------------------------------

def test_rudderstack_beacon_batch():
    anon = uid("rs-anon")
    body = {"batch": [
        {"type": "identify", "userId": "", "anonymousId": anon, "messageId": anon + "-1",
         "originalTimestamp": "2024-05-01T09:00:00.000Z", "channel": "web",
         "context": {"traits": {"email": "rs@example.com", "quiz": {"style": "boho"}},
                     "library": {"name": "RudderLabs JavaScript SDK"}}},
        {"type": "track", "userId": "", "anonymousId": anon, "messageId": anon + "-2",
         "event": "Product Viewed", "originalTimestamp": "2024-05-01T09:01:00.000Z",
         "properties": {"product_id": "rs-p1", "name": "Lamp", "price": 20},
         "context": {"traits": {"plan": "free"}}},
    ]}
    r = S.request("POST", "/beacon/v1/batch?writeKey=" + h.WRITE_KEY, json.dumps(body),
                  {"Content-Type": "text/plain;charset=UTF-8"})
    h.success(r, "beacon batch")
    p = S.profile(anon)
    h.status(p, 200, "profile of the RudderStack visitor")
    h.eq(p.json["ids"], {"userId": [], "anonymousId": [anon]}, "userId \"\" is anonymous")
    t = p.json["traits"]
    h.eq(t.get("email"), "rs@example.com", "trait from context.traits")
    h.eq(t.get("quiz"), {"style": "boho"}, "nested trait from context.traits")
    h.eq(t.get("plan"), "free", "context.traits on a track")
    evs = {e["messageId"]: e for e in timeline(anon)}
    h.eq(evs[anon + "-1"].get("timestamp"), "2024-05-01T09:00:00.000Z", "originalTimestamp")
    h.eq(evs[anon + "-1"].get("channel"), "web", "unknown fields kept")
    assert "userId" not in evs[anon + "-2"], "userId \"\" should be dropped: %r" % evs[anon + "-2"]
    h.eq(p.json["computed"]["product_views"], 1, "product_views")
    # the same shape on /v1/batch with Basic auth
    anon2 = uid("rs-anon")
    h.success(S.collect("/v1/batch", {"batch": [dict(body["batch"][0], anonymousId=anon2,
                                                     messageId=anon2 + "-1")]}))
    h.eq(S.profile(anon2).json["traits"].get("email"), "rs@example.com", "via /v1/batch")


# --- CORS ----------------------------------------------------------------------------

ORIGIN = "https://shop.example.com"


def test_cors_preflight():
    for path in ("/v1/track", "/v1/batch", "/v1/t", "/beacon/v1/batch", "/v1/admin/stats",
                 "/does/not/exist"):
        r = S.request("OPTIONS", path, headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-custom"})
        h.status(r, 204, "OPTIONS %s" % path)
        h.eq(r.header("access-control-allow-origin"), ORIGIN, "ACAO of OPTIONS %s" % path)
        h.eq(r.header("access-control-allow-headers"), "authorization,content-type,x-custom",
             "ACAH of OPTIONS %s" % path)


def _expose_ok(r):
    exp = r.header("access-control-expose-headers") or ""
    return "retry-after" in [x.strip().lower() for x in exp.split(",")]


def test_cors_headers_on_every_response():
    user = uid("cors")
    answers = [
        ("200", S.collect("/v1/track", {"userId": user, "event": "C"},
                          headers={"Origin": ORIGIN})),
        ("401", S.request("POST", "/v1/track", {"userId": user, "event": "C"},
                          {"Origin": ORIGIN})),
        ("400", S.collect("/v1/track", "{", headers={"Origin": ORIGIN})),
        ("422", S.collect("/v1/track", {"userId": user}, headers={"Origin": ORIGIN})),
        ("404", S.request("GET", "/nope", headers={"Origin": ORIGIN})),
        ("healthz", S.request("GET", "/healthz", headers={"Origin": ORIGIN})),
    ]
    for what, r in answers:
        h.eq(r.header("access-control-allow-origin"), ORIGIN, "ACAO on %s" % what)
        assert _expose_ok(r), "Access-Control-Expose-Headers lacks Retry-After on %s: %r" % (
            what, r.headers)
    # without an Origin there is still an Access-Control-Allow-Origin header
    r = S.collect("/v1/track", {"userId": user, "event": "C2"})
    assert r.header("access-control-allow-origin"), "no ACAO without Origin: %r" % r.headers
    assert _expose_ok(r), "no Expose-Headers without Origin: %r" % r.headers


# --- routes, methods, metrics -----------------------------------------------------------

def test_unknown_path_404_and_wrong_method_405():
    for path in ("/nope", "/v1/nope", "/v1/trackx", "/v2/track", "/beacon/v1/nope"):
        h.error(S.request("GET", path), 404, "not_found", what="GET %s" % path)
        h.error(S.collect(path, {"userId": "x", "event": "y"}), 404, "not_found",
                what="POST %s" % path)
    for method, path in (("GET", "/v1/track"), ("PUT", "/v1/batch"), ("DELETE", "/v1/t"),
                         ("POST", "/healthz"), ("POST", "/metrics"), ("GET", "/v1/identify"),
                         ("POST", "/v1/admin/stats")):
        hdrs = {"Authorization": "Bearer " + h.ADMIN_KEY} if "admin" in path else {}
        r = S.request(method, path, "{}" if method != "GET" else None, hdrs)
        h.error(r, 405, "method_not_allowed", what="%s %s" % (method, path))
        allow = r.header("allow") or ""
        assert allow, "405 without an Allow header for %s %s" % (method, path)


def parse_metrics(text):
    """{(name, frozenset(labels)): value}"""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)', line)
        assert m, "unparsable metrics line: %r" % line
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def metric(ms, name, **labels):
    return ms.get((name, frozenset(labels.items())), 0.0)


def test_metrics():
    before = parse_metrics(S.request("GET", "/metrics").body.decode())
    user = uid("metrics")
    for i in range(3):
        h.success(S.collect("/v1/track", {"userId": user, "event": "M%d" % i}))
    h.success(S.collect("/v1/t", {"userId": user, "event": "Short"}))
    h.status(S.request("POST", "/v1/track", {"userId": user, "event": "x"}), 401)
    r = S.request("GET", "/metrics")
    h.status(r, 200, "/metrics")
    ctype = r.header("content-type") or ""
    assert ctype.startswith("text/plain"), "content-type of /metrics: %r" % ctype
    text = r.body.decode()
    for name in ("bespoke_http_requests_total", "bespoke_events_ingested_total",
                 "bespoke_ingest_queue_depth", "bespoke_commit_latency_seconds_bucket",
                 "bespoke_commit_latency_seconds_sum", "bespoke_commit_latency_seconds_count"):
        assert re.search(r"^%s[{ ]" % name, text, re.M), "%s missing from /metrics" % name
    assert re.search(r"^# TYPE bespoke_http_requests_total counter$", text, re.M), \
        "no TYPE line for bespoke_http_requests_total"
    assert re.search(r"^# TYPE bespoke_commit_latency_seconds histogram$", text, re.M), \
        "no TYPE histogram line for bespoke_commit_latency_seconds"
    after = parse_metrics(text)
    d200 = metric(after, "bespoke_http_requests_total", route="/v1/track", status="200") - \
        metric(before, "bespoke_http_requests_total", route="/v1/track", status="200")
    h.eq(d200, 4.0, "requests_total{route=/v1/track,status=200} delta (short form counted "
                    "under /v1/track)")
    d401 = metric(after, "bespoke_http_requests_total", route="/v1/track", status="401") - \
        metric(before, "bespoke_http_requests_total", route="/v1/track", status="401")
    h.eq(d401, 1.0, "requests_total{route=/v1/track,status=401} delta")
    h.eq(metric(after, "bespoke_events_ingested_total"), float(S.stats()["events"]),
         "events_ingested_total == stats.events (no erasure in this suite)")
    h.eq(metric(after, "bespoke_ingest_queue_depth"), 0.0, "queue depth when idle")
    buckets = sorted(((float("inf") if dict(k[1])["le"] == "+Inf" else float(dict(k[1])["le"])), v)
                     for k, v in after.items() if k[0] == "bespoke_commit_latency_seconds_bucket")
    assert len(buckets) >= 2 and buckets[-1][0] == float("inf"), "buckets: %r" % buckets
    counts = [v for _, v in buckets]
    h.eq(counts, sorted(counts), "bucket counts are cumulative")
    h.eq(buckets[-1][1], metric(after, "bespoke_commit_latency_seconds_count"),
         "+Inf bucket == _count")
    assert metric(after, "bespoke_commit_latency_seconds_count") >= 1, "no commits counted"
    assert metric(after, "bespoke_commit_latency_seconds_sum") > 0, "latency sum is 0"
    h.eq(metric(after, "bespoke_ingest_wal_direct"), 1.0 if allows_direct(S.data_dir) else 0.0,
         "bespoke_ingest_wal_direct: O_DIRECT wherever the data directory allows it")


def allows_direct(directory):
    """Whether the filesystem of directory takes O_DIRECT opens."""
    path = os.path.join(directory, "direct-probe")
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o600))
        return True
    except OSError:
        return False
    finally:
        if os.path.exists(path):
            os.unlink(path)


def connections_by_lane(srv):
    """{(lane, worker): connections} from /metrics."""
    text = srv.request("GET", "/metrics").body.decode()
    return {(dict(k[1])["lane"], dict(k[1])["worker"]): v for k, v in parse_metrics(text).items()
            if k[0] == "bespoke_http_connections"}


def open_connections(srv, count):
    conns = []
    for _ in range(count):
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        c.request("GET", "/healthz")
        h.eq(c.getresponse().read(), b'{"status":"ok"}', "healthz")
        conns.append(c)
    return conns


def lanes_while_open(srv, count):
    """connections_by_lane while count new keep-alive connections are open."""
    conns = open_connections(srv, count)
    try:
        return connections_by_lane(srv)
    finally:
        for c in conns:
            c.close()


def test_connections_are_spread_over_the_workers():
    """One client thread opens 30 keep-alive connections to a server with four
    HTTP lanes: each lane gets some, none more than 3 over the least loaded
    (the listener's slack of 2, plus the /metrics request's own), and all go
    to the lanes' near (poll) workers, which take up to 64 each."""
    srv = h.Server(BIN, extra_args=["--threads", "4"]).start()
    SERVERS.append(srv)
    by = lanes_while_open(srv, 30)
    h.eq(sorted(by), [(str(i), w) for i in range(4) for w in ("far", "near")],
         "a near and a far gauge per lane")
    per_lane = [by[(str(i), "near")] + by[(str(i), "far")] for i in range(4)]
    h.eq(sum(per_lane), 31.0, "30 open connections and the /metrics one")
    h.eq(sum(by[(str(i), "far")] for i in range(4)), 0.0, "nothing overflows to far workers")
    assert max(per_lane) - min(per_lane) <= 3, by
    srv.stop()


def test_near_worker_overflow_and_reuse():
    """One lane: the near worker takes 64 connections, the rest go to the far
    one and are served alike; once they close, the near worker's count falls
    (its close notifications) and new connections go to it again."""
    srv = h.Server(BIN, extra_args=["--threads", "1"]).start()
    SERVERS.append(srv)
    conns = open_connections(srv, 80)
    try:
        by = connections_by_lane(srv)
        # up to 64 (a connection closed just before may not be counted out yet)
        assert 60 <= by[("0", "near")] <= 64, "the near worker holds at most 64: %r" % by
        h.eq(by[("0", "near")] + by[("0", "far")], 81.0, "80 open and the /metrics one")
        for c in conns:  # every connection still answers, near or far
            c.request("GET", "/healthz")
            h.eq(c.getresponse().status, 200, "healthz again")
    finally:
        for c in conns:
            c.close()
    deadline = time.time() + 10
    while time.time() < deadline and sum(connections_by_lane(srv).values()) > 1:
        time.sleep(0.05)
    time.sleep(0.2)
    by = lanes_while_open(srv, 64)
    h.eq(by[("0", "near")] + by[("0", "far")], 65.0, "64 new connections and the /metrics one")
    assert by[("0", "near")] >= 60, "closed connections left the near count: %r" % by
    h.eq(srv.stop(), 0, "exit code")


def test_many_connections_at_once():
    """400 connections opened in a burst, each sending a track call before any
    answer is read: the near workers fill to their cap, the rest go far, and
    every call is answered and stored (a poll worker of libmicrohttpd 0.9.75
    deadlocks if it is ever handed more than its limit)."""
    srv = h.Server(BIN, extra_args=["--threads", "2"]).start()
    SERVERS.append(srv)
    user = uid("burst")
    auth = h.basic_auth(srv.write_key)
    conns = []
    try:
        for i in range(400):
            c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
            c.request("POST", "/v1/track", json.dumps({"userId": user, "event": "Burst",
                                                       "messageId": "burst-%d" % i}),
                      {"Authorization": auth, "Content-Type": "application/json"})
            conns.append(c)
        by = connections_by_lane(srv)
        for c in conns:
            r = c.getresponse()
            h.eq((r.status, r.read()), (200, b'{"success":true}'), "a track call of the burst")
    finally:
        for c in conns:
            c.close()
    assert all(v <= 64 for k, v in by.items() if k[1] == "near"), by
    h.eq(len(srv.all_events(user)), 400, "every call of the burst stored")
    h.eq(srv.stop(), 0, "exit code")


# --- 429 ------------------------------------------------------------------------------------

def test_queue_full_429_with_retry_after():
    small = h.Server(BIN, extra_args=["--queue-max", "1"]).start()
    SERVERS.append(small)
    user = uid("busy")
    r = small.collect("/v1/batch", {"batch": [
        {"type": "track", "userId": user, "event": "A"},
        {"type": "track", "userId": user, "event": "B"}]}, headers={"Origin": ORIGIN})
    h.error(r, 429, "busy", what="2 events with --queue-max 1")
    ra = r.header("retry-after")
    assert ra and ra.isdigit() and int(ra) >= 1, "Retry-After: %r" % ra
    h.eq(r.header("access-control-allow-origin"), ORIGIN, "ACAO on 429")
    assert _expose_ok(r), "Expose-Headers on 429"
    h.status(small.profile(user), 404, "nothing stored from a refused batch")
    h.success(small.collect("/v1/track", {"userId": user, "event": "C"}), "one event fits")
    h.eq([e["event"] for e in small.all_events(user)], ["C"], "stored")
    code = small.stop()
    h.eq(code, 0, "exit code of the --queue-max 1 server")


if __name__ == "__main__":
    h.run(dict(globals()), setup, teardown)
