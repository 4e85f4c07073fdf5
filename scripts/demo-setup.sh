#!/usr/bin/env bash
# Creates the demo shop's placements, segments and campaigns through the admin
# API of a running server (scripts/demo.sh runs it; so does the browser test).
# Idempotent: everything is PUT, so running it again leaves the same state.
#
# Usage: scripts/demo-setup.sh BASE_URL ADMIN_KEY [--catalog FILE.jsonl] [HISTORY.csv.zst ...]
#   BASE_URL   e.g. http://127.0.0.1:8080
#   --catalog  product JSONL to upload first (the synthetic shop's catalog)
#   HISTORY    Online Retail CSVs: product popularity is counted from them
# The seed's examples, as written campaigns:
#   welcome_coupon        first-time visitors get a coupon modal (computed.orders = 0)
#   lantern_search_banner a search for "lantern" shows a lantern banner on the
#   lantern_hero            search page and in the home page's hero
#   cart_hides_teaser     adding to cart hides the "free shipping" teaser
#   vip_hero              returning high-value customers see their own hero
#   style_quiz, quiz_picks  a shopping quiz, then products that fit its answers
#   popular_home          popular products on the home page
#   similar_products      "you may also like" under a product
#   cart_free_shipping    on the cart page, a nudge to reach free shipping
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
BASE=${1%/}
KEY=$2
shift 2

# put PATH JSON: PUT with the admin key; prints the error and fails on non-2xx.
put() {
    local out code
    out=$(mktemp)
    code=$(curl -s -o "$out" -w '%{http_code}' -X PUT -H "Authorization: Bearer $KEY" \
        -H 'Content-Type: application/json' --data-binary "$2" "$BASE$1") || code=000
    if [ "${code:0:1}" != 2 ]; then
        echo "demo-setup: PUT $1 answered $code: $(cat "$out")" >&2
        rm -f "$out"
        return 1
    fi
    rm -f "$out"
}

for _ in $(seq 1 100); do
    curl -sf "$BASE/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -sf "$BASE/healthz" >/dev/null || { echo "demo-setup: no server at $BASE" >&2; exit 1; }

python3 scripts/demo-catalog.py "$BASE" "$KEY" "$@"

# --- placements and their defaults (what everyone else sees) -----------------------
put /v1/admin/placements/home_hero '{"id":"home_hero","name":"Home page hero",
 "default":{"type":"banner","title":"Gifts for every home",
  "text":"Lanterns, mugs, bunting and a thousand little things.",
  "image":"/shop/img/gifts.svg","link":"/shop/category.html"}}'
put /v1/admin/placements/home_modal '{"id":"home_modal","name":"Home page modal","default":null}'
put /v1/admin/placements/home_quiz '{"id":"home_quiz","name":"Home page quiz","default":null}'
put /v1/admin/placements/home_recs '{"id":"home_recs","name":"Home page products",
 "default":{"type":"products","title":"Popular right now","strategy":"popular","n":8}}'
put /v1/admin/placements/search_banner '{"id":"search_banner","name":"Above search results","default":null}'
put /v1/admin/placements/pdp_below '{"id":"pdp_below","name":"Under the product",
 "default":{"type":"products","title":"Popular right now","strategy":"popular","n":4}}'
put /v1/admin/placements/cart_modal '{"id":"cart_modal","name":"Cart page modal","default":null}'
put /v1/admin/placements/shipping_teaser '{"id":"shipping_teaser","name":"Free shipping teaser",
 "description":"The teaser in the page stays unless a campaign hides it","default":null}'

# --- segments ------------------------------------------------------------------------
put /v1/admin/segments/lantern_seekers '{"id":"lantern_seekers","name":"Looking for lanterns",
 "description":"Searched for lanterns in the last 30 minutes",
 "condition":"did(\"Products Searched\", 30m, lower(properties.query) contains \"lantern\")"}'
put /v1/admin/segments/cart_fillers '{"id":"cart_fillers","name":"Something in the cart",
 "condition":"computed.cart_items > 0"}'
put /v1/admin/segments/quiz_takers '{"id":"quiz_takers","name":"Took the style quiz",
 "condition":"traits.quiz.color != null"}'

# --- campaigns -----------------------------------------------------------------------
put /v1/admin/campaigns/welcome_coupon '{"id":"welcome_coupon","name":"Welcome coupon",
 "placement":"home_modal","status":"active","priority":10,
 "condition":"computed.orders = 0","cap":{"per_day":3},
 "content":{"type":"coupon","title":"Welcome!",
  "text":"10% off your first order with this code","code":"WELCOME10"}}'
put /v1/admin/campaigns/lantern_search_banner '{"id":"lantern_search_banner",
 "name":"Searched lantern: lantern banner","placement":"search_banner","status":"active",
 "priority":10,
 "condition":"did(\"Products Searched\", 30m, lower(properties.query) contains \"lantern\")",
 "content":{"type":"banner","title":"Light up your evenings",
  "text":"Every lantern is 20% off this week.","image":"/shop/img/lantern.svg",
  "link":"/shop/search.html?q=lantern"}}'
put /v1/admin/campaigns/lantern_hero '{"id":"lantern_hero","name":"Searched lantern: lantern hero",
 "placement":"home_hero","status":"active","priority":20,
 "condition":"did(\"Products Searched\", 30m, lower(properties.query) contains \"lantern\")",
 "content":{"type":"banner","title":"Still thinking about lanterns?",
  "text":"Every lantern is 20% off this week: light up your evenings.",
  "image":"/shop/img/lantern.svg","link":"/shop/search.html?q=lantern"}}'
put /v1/admin/campaigns/vip_hero '{"id":"vip_hero","name":"High-value customers: own hero",
 "placement":"home_hero","status":"active","priority":10,
 "condition":"in_segment(\"high_value\")",
 "content":{"type":"banner","title":"Welcome back",
  "text":"Thank you for being one of our best customers: early access to the new collection, delivered free.",
  "image":"/shop/img/star.svg","link":"/shop/category.html"}}'
put /v1/admin/campaigns/cart_hides_teaser '{"id":"cart_hides_teaser",
 "name":"Add to cart hides the free shipping teaser","placement":"shipping_teaser",
 "status":"active","priority":10,"condition":"computed.cart_items > 0",
 "content":{"type":"toggle","hide":["#shipping-teaser"]}}'
put /v1/admin/campaigns/style_quiz '{"id":"style_quiz","name":"Style quiz",
 "placement":"home_quiz","status":"active","priority":10,
 "condition":"traits.quiz.color = null",
 "content":{"type":"quiz","title":"Find your style in two taps","questions":[
  {"id":"color","text":"Black or white?","options":[
   {"value":"black","label":"Black"},{"value":"white","label":"White"}]},
  {"id":"room","text":"Which room are you shopping for?","options":[
   {"value":"kitchen","label":"Kitchen"},{"value":"living","label":"Living room"},
   {"value":"garden","label":"Garden"},{"value":"party","label":"A party"}]}]}}'
put /v1/admin/campaigns/quiz_picks '{"id":"quiz_picks","name":"Products that fit the quiz",
 "placement":"home_quiz","status":"active","priority":5,
 "condition":"traits.quiz.color != null",
 "content":{"type":"products","title":"Picked for you","strategy":"popular","n":4}}'
put /v1/admin/campaigns/popular_home '{"id":"popular_home","name":"Popular products on the home page",
 "placement":"home_recs","status":"active","priority":0,
 "content":{"type":"products","title":"Popular right now","strategy":"popular","n":8}}'
put /v1/admin/campaigns/similar_products '{"id":"similar_products","name":"You may also like",
 "placement":"pdp_below","status":"active","priority":10,
 "content":{"type":"products","title":"You may also like","strategy":"similar","n":4}}'
put /v1/admin/campaigns/cart_free_shipping '{"id":"cart_free_shipping",
 "name":"Cart under £50: free shipping nudge","placement":"cart_modal","status":"active",
 "priority":10,"condition":"computed.cart_items > 0 and computed.cart_value < 50",
 "cap":{"per_day":1},
 "content":{"type":"banner","title":"Almost there",
  "text":"Orders over £50 ship free. Add a little something?","link":"/shop/category.html"}}'

echo "demo-setup: 8 placements, 3 segments and 10 campaigns are in place"
