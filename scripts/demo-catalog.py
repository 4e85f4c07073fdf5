#!/usr/bin/env python3
"""Readies the demo shop's catalog through the admin API (scripts/demo-setup.sh).

The UCI Online Retail data names products but gives them no category, so a
storefront could not be browsed by department: products without a category
get one from the words of their name (LANTERN, T-LIGHT -> Lighting; MUG,
CAKE -> Kitchen; ...); postage, fees and manual adjustments get "Fees" and
in_stock false (the shop hides them). Every product gets the attributes the
demo's shopping quiz filters on ("color" when the name names one colour,
"room" from the category), and, given the history files, a "popularity" (order lines of the
product), which product blocks order by until the recommendation module
answers them.

Usage: demo-catalog.py BASE_URL ADMIN_KEY [--catalog FILE.jsonl] [HISTORY.csv.zst ...]
  --catalog FILE  products to upload first (the synthetic shop's catalog)
Python 3 standard library only (and the zstd command for .zst files)."""

import json
import re
import subprocess
import sys
import urllib.request

# First match wins: the specific before the general.
CATEGORIES = [
    ("Christmas", r"CHRISTMAS|XMAS|ADVENT|SANTA|REINDEER|SNOWFLAKE|NATIVITY"),
    ("Lighting", r"LANTERN|T-LIGHT|TEALIGHT|TEA LIGHT|CANDLE|LAMP|LIGHTS?\b|NIGHTLIGHT"),
    ("Bags", r"\bBAGS?\b|SHOPPER|PURSE|TOTE"),
    ("Baking", r"CAKE|BAKING|CUPCAKE|PANTRY|RECIPE|COOKIE|JELLY MOULD"),
    ("Kitchen", r"\bMUGS?\b|\bCUPS?\b|TEACUP|TEAPOT|PLATE|BOWL|JUG|\bJARS?\b|\bTINS?\b|LUNCH BOX|APRON"
                r"|CUTLERY|SPOON|NAPKIN|TRAY|COASTER|CHOPSTICK|EGG|KITCHEN|TEA TOWEL|BOTTLE|GLASS|BEAKER"),
    ("Party", r"PARTY|BUNTING|BALLOON|PAPER CHAIN|CONFETTI|GARLAND|STRAWS"),
    ("Cards & wrap", r"\bCARDS?\b|WRAP|NOTEBOOK|PENCIL|\bPENS?\b|STICKER|ENVELOPE|GIFT TAG|NOTE ?BOOK|JOURNAL|ERASER|RIBBON"),
    ("Toys & kids", r"\bTOYS?\b|DOLL|CHILDREN|CHILDS|KIDS|GAME|SPACEBOY|PLAYHOUSE|JIGSAW|SKIPPING|COLOURING|FELTCRAFT|TEDDY|CIRCUS"),
    ("Garden", r"GARDEN|PLANT|FLOWER POT|WATERING|BIRD ?HOUSE|BIRD FEEDER|HERB|GNOME|WICKER"),
    ("Home decor", r"HEART|SIGN|FRAME|CLOCK|CUSHION|DOORMAT|ORNAMENT|MIRROR|VASE|DECORATION|HOOK|WALL"
                   r"|PLAQUE|HANGER|DRAWER|CABINET|STORAGE|BASKET|BOX|CHALKBOARD|HOT WATER BOTTLE|THROW|BLANKET"),
    ("Jewellery & gifts", r"NECKLACE|BRACELET|EARRINGS|RING|HAIR|BROOCH|CHARM|KEYRING|WALLET|UMBRELLA|GLOVES"),
]
CATEGORY_RE = [(name, re.compile(rx)) for name, rx in CATEGORIES]
FEES_RE = re.compile(r"POSTAGE|CARRIAGE|MANUAL|DISCOUNT|BANK CHARGES|AMAZON FEE|ADJUST|SAMPLES|CRUK|"
                     r"DOTCOM|^TEST|CHECK|DAMAGED|FOUND|LOST|WRONG|\?")
FEE_CODES = re.compile(r"^(POST|DOT|M|D|C2|S|B|BANK CHARGES|AMAZONFEE|CRUK|PADS|TEST\d*|ADJUST\d*|gift_.*)$", re.I)

# The quiz asks "black or white?": a product of one named colour is left out
# for those who answered another (the real data's and the synthetic shop's).
COLOURS = {"BLACK", "WHITE", "RED", "PINK", "BLUE", "GREEN", "IVORY", "CREAM", "PURPLE", "YELLOW",
           "ORANGE", "GOLD", "SILVER", "SAGE", "NAVY", "TERRACOTTA", "OAT", "CHARCOAL", "BLUSH",
           "MUSTARD", "TEAL"}
ROOM_OF = [  # the quiz's "room" answer, from a category (real or synthetic)
    ("kitchen", r"Kitchen|Baking|Pantry|Cooking"),
    ("garden", r"Garden|Outdoor"),
    ("party", r"Party|Christmas|Toys|Games|Baby"),
    ("living", r"Lighting|Decor|Bedding|Home"),
]


def call(base, key, method, path, body=None, ctype="application/json"):
    req = urllib.request.Request(base + path, data=body, method=method,
                                 headers={"Authorization": "Bearer " + key, "Content-Type": ctype})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read().decode("utf-8"))


def all_products(base, key):
    cursor = ""
    while True:
        page = call(base, key, "GET", "/v1/admin/products?limit=1000" +
                    ("&cursor=" + urllib.request.quote(cursor, safe="") if cursor else ""))
        yield from page.get("products", [])
        cursor = page.get("next_cursor")
        if not cursor:
            return


def popularity(files):
    """Order lines per StockCode in the Online Retail CSVs."""
    counts = {}
    for f in files:
        cmd = ["zstd", "-dc", f] if f.endswith(".zst") else ["cat", f]
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, errors="replace") as p:
            for i, line in enumerate(p.stdout):
                if i == 0:
                    continue
                parts = line.split(",", 2)
                if len(parts) > 1 and not parts[0].startswith(("C", "c")):  # C...: cancellations
                    counts[parts[1]] = counts.get(parts[1], 0) + 1
    return counts


def enrich(p, counts):
    """The product with what the demo needs, or None when nothing changes."""
    q = dict(p)
    for k in ("updated_at", "created_at"):
        q.pop(k, None)
    name = (p.get("name") or "").upper()
    if not p.get("category"):
        if FEE_CODES.match(p.get("id", "")) or FEES_RE.search(name) or not name:
            q["category"], q["in_stock"] = "Fees", False
        else:
            q["category"] = next((c for c, rx in CATEGORY_RE if rx.search(name)), "Gifts")
    attrs = dict(q.get("attributes") or {})
    colours = [w for w in re.findall(r"[A-Z]+", name) if w in COLOURS]
    if "color" not in attrs and len(set(colours)) == 1:
        attrs["color"] = colours[0].lower()
    if "room" not in attrs:
        attrs["room"] = next((room for room, rx in ROOM_OF if re.search(rx, q.get("category") or "")), "other")
    if attrs:
        q["attributes"] = attrs
    if counts and p.get("id") in counts:
        q["popularity"] = counts[p["id"]]
    return None if q == {k: v for k, v in p.items() if k not in ("updated_at", "created_at")} else q


def upload(base, key, products):
    for i in range(0, len(products), 2000):
        body = "".join(json.dumps(x) + "\n" for x in products[i:i + 2000]).encode("utf-8")
        r = call(base, key, "POST", "/v1/admin/products", body, "application/x-ndjson")
        if r.get("rejected_count"):
            print("demo-catalog: %d products refused, e.g. %s" % (r["rejected_count"], r["rejected"][:1]),
                  file=sys.stderr)


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    base, key, rest = args[0].rstrip("/"), args[1], args[2:]
    if rest[:1] == ["--catalog"]:
        with open(rest[1], encoding="utf-8") as f:
            upload(base, key, [json.loads(line) for line in f if line.strip()])
        rest = rest[2:]
    counts = popularity(rest) if rest else {}
    changed, cats = [], {}
    for p in all_products(base, key):
        q = enrich(p, counts)
        if q:
            changed.append(q)
        c = (q or p).get("category") or "-"
        cats[c] = cats.get(c, 0) + 1
    upload(base, key, changed)
    print("demo-catalog: %d products, %d updated; categories: %s" % (
        sum(cats.values()), len(changed),
        ", ".join("%s %d" % kv for kv in sorted(cats.items(), key=lambda kv: -kv[1])[:12])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
