#!/usr/bin/env python3
"""decide_setup.py - the configuration the decision benchmark runs against
(bench/run.sh, rows "decide"): 50 segments and 100 active campaigns over 4
placements, created through the admin API of a running server.

  decide_setup.py BASE_URL ADMIN_AUTH

Segments read computed traits (orders, revenue, views, carts, favourite
category, recency); campaigns combine segment membership, computed traits
and the request context, with priorities, caps and control shares, so that
a decision evaluates several conditions per placement before one matches
(the lowest-priority campaign of each placement matches everyone). Prints
`segments S campaigns C placements P`."""

import json
import sys
import urllib.request

CATEGORIES = ["Fashion > Women > Dresses", "Food > Pantry", "Books > Cooking", "Toys > Baby",
              "Electronics > Accessories", "Fashion > Men > Shirts", "Home > Decor",
              "Garden > Plants"]
PLACEMENTS = ["home_hero", "home_modal", "pdp_below", "cart_banner"]
PAGE_TYPES = ["home", "product", "category", "cart", "search"]


def call(base, auth, method, path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method=method,
                                 headers={"Authorization": auth,
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        if r.status not in (200, 201):
            raise SystemExit("%s %s: HTTP %d" % (method, path, r.status))


def segment_conditions():
    out = []
    for n in range(1, 11):
        out.append("computed.product_views >= %d" % (n * 3))
    for n in range(0, 8):
        out.append("computed.orders >= %d" % n)
    for n in range(1, 9):
        out.append("computed.revenue > %d" % (n * 50))
    for c in CATEGORIES:
        out.append('computed.favorite_category = "%s"' % c)
    for c in CATEGORIES:
        out.append('computed.favorite_category starts_with "%s" and computed.page_views > 2'
                   % c.split(" > ")[0])
    for d in (1, 7, 30, 90):
        out.append("days_since(computed.last_seen) <= %d" % d)
    for n in (1, 3, 5, 10):
        out.append("computed.add_to_carts >= %d" % n)
    return out[:50]


def campaign(i, segments):
    placement = PLACEMENTS[i % len(PLACEMENTS)]
    rank = i // len(PLACEMENTS)  # 0..24 within its placement
    seg = segments[(i * 7) % len(segments)]
    page = PAGE_TYPES[i % len(PAGE_TYPES)]
    if rank == 24:
        cond = None  # the catch-all of the placement
    elif rank % 3 == 0:
        cond = 'in_segment("%s") and context.page.type = "%s"' % (seg, page)
    elif rank % 3 == 1:
        cond = 'in_segment("%s") and computed.cart_value > %d' % (seg, 20 + rank * 10)
    else:
        cond = 'not in_segment("%s") and computed.sessions > %d' % (seg, rank)
    content = {"type": "banner", "title": "Campaign %d" % i, "link": "/c/%d" % i,
               "image": "/img/c%d.jpg" % i}
    body = {"placement": placement, "status": "active", "priority": 100 - rank,
            "condition": cond, "content": content}
    if rank % 5 == 1:
        body["cap"] = {"per_day": 3, "total": 20}
    if rank % 4 == 2:
        body["control"] = 0.1
    return "bench_c%03d" % i, body


def main():
    base, auth = sys.argv[1], sys.argv[2]
    segments = []
    for i, cond in enumerate(segment_conditions()):
        sid = "bench_s%02d" % i
        call(base, auth, "PUT", "/v1/admin/segments/" + sid,
             {"name": "Bench segment %d" % i, "condition": cond})
        segments.append(sid)
    for p in PLACEMENTS:
        call(base, auth, "PUT", "/v1/admin/placements/" + p,
             {"default": {"type": "banner", "title": "Default " + p}})
    for i in range(100):
        cid, body = campaign(i, segments)
        call(base, auth, "PUT", "/v1/admin/campaigns/" + cid, body)
    print("segments %d campaigns %d placements %d" % (len(segments), 100, len(PLACEMENTS)))


main()
