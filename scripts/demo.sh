#!/usr/bin/env bash
# make demo: loads the demo shop into ./demo-data, serves it, and creates the
#   example campaigns (scripts/demo-setup.sh); the storefront is at /shop/.
#   With ../shared/data (the UCI Online Retail history) beside the project,
#   the real shop's catalog and two years of orders are imported; without it
#   (a newcomer's machine) a synthetic shop from `bespoke simulate` is used.
# Environment: BESPOKE_LISTEN (127.0.0.1:8080), DEMO_DATA (./demo-data),
#   DEMO_EVENTS (synthetic events, 200000), BESPOKE_WRITE_KEY / BESPOKE_ADMIN_KEY
#   (demo_write_key / demo_admin_key).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
BIN="$BUILD/bespoke"
DATA=${DEMO_DATA:-demo-data}
LISTEN=${BESPOKE_LISTEN:-127.0.0.1:8080}
RETAIL_DIR=../shared/data/online-retail

mkdir -p "$DATA"
if [ ! -f "$DATA/.loaded" ]; then
    if [ -f "$RETAIL_DIR/online_retail.csv.zst" ]; then
        echo "demo: importing the UCI Online Retail history (CC BY 4.0, Daqing Chen)"
        for f in online_retail_ii_2009-2010.csv.zst online_retail.csv.zst; do
            [ -f "$RETAIL_DIR/$f" ] && "$BIN" import --data "$DATA" --format online-retail "$RETAIL_DIR/$f"
        done
    else
        echo "demo: ../shared/data not found; generating a synthetic shop instead"
        "$BIN" simulate --events "${DEMO_EVENTS:-200000}" --seed 1 --out "$DATA/clickstream.jsonl"
        "$BIN" simulate --events "${DEMO_EVENTS:-200000}" --seed 1 --catalog --out "$DATA/catalog.jsonl"
        "$BIN" import --data "$DATA" --format segment-jsonl "$DATA/clickstream.jsonl"
        rm -f "$DATA/clickstream.jsonl"
    fi
    touch "$DATA/.loaded"
fi

# Fixed keys make the README's tour copy-pasteable; the demo listens on
# loopback only. A real deployment lets `serve` generate its own keys.
export BESPOKE_WRITE_KEY=${BESPOKE_WRITE_KEY:-demo_write_key}
export BESPOKE_ADMIN_KEY=${BESPOKE_ADMIN_KEY:-demo_admin_key}
"$BIN" serve --listen "$LISTEN" --data "$DATA" --web web &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER"; exit 0' INT TERM

# The example placements, segments and campaigns (and the shop's catalog:
# categories for the real data, the synthetic shop's products otherwise).
SETUP=()
if [ -f "$DATA/catalog.jsonl" ]; then
    SETUP=(--catalog "$DATA/catalog.jsonl")
elif [ -f "$RETAIL_DIR/online_retail.csv.zst" ]; then
    SETUP=("$RETAIL_DIR"/*.csv.zst)
fi
if ! scripts/demo-setup.sh "http://$LISTEN" "$BESPOKE_ADMIN_KEY" "${SETUP[@]}"; then
    kill "$SERVER"
    wait "$SERVER" || true
    exit 1
fi

echo "demo: serving on http://$LISTEN (Ctrl-C to stop)"
echo "demo: write key $BESPOKE_WRITE_KEY, admin key $BESPOKE_ADMIN_KEY"
echo "demo: the shop is at http://$LISTEN/shop/"
wait "$SERVER"
