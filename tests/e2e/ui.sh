#!/usr/bin/env bash
# The web UI end to end: ingest 31 real photos (3 per category plus one product whose title is
# an HTML injection attempt) with titles, brands, prices and sizes, start `lookalike serve` on
# a free port with its default --web, check the static serving with curl, then drive the page
# in headless Debian chromium through playwright-core (tests/e2e/ui.test.mjs).
#
# Set-up installs what is missing: chromium and nodejs/npm through scripts/deps.sh, the npm
# packages with `npm ci` (package-lock.json) when tests/e2e/node_modules is absent.
# Screenshots land in $BUILD/test-logs/e2e/; E2E_SCREENSHOT=FILE.png also writes the README's
# picture (a desktop view of a photo search) there.
set -uo pipefail
BUILD=${BUILD:-build}
LK=$BUILD/lookalike
PRODUCTS=${DATA_DIR:-../shared/data}/products
HERE=tests/e2e
TMP=$(mktemp -d)
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill -9 "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
FAILS=0
fail() {
    echo "FAIL: $*"
    FAILS=$((FAILS + 1))
}
ok() { echo "ok: $*"; }
expect_eq() {
    if [ "$2" = "$3" ]; then ok "$1"; else fail "$1: got [$2], want [$3]"; fi
}

# ---- the browser and the driver, installed when missing ----
[ -x /usr/bin/chromium ] || scripts/deps.sh chromium || exit 1
command -v node >/dev/null || scripts/deps.sh nodejs || exit 1
if [ ! -f "$HERE/node_modules/playwright-core/package.json" ]; then
    command -v npm >/dev/null || scripts/deps.sh npm || exit 1
    (cd "$HERE" && npm ci --no-audit --no-fund) || exit 1
fi

# ---- server-side checks of the --web flag that need no catalogue ----
"$LK" serve --data "$TMP/nodata" --port 0 --web "$TMP/no-such-dir" >"$TMP/badweb.log" 2>&1
expect_eq "serve refuses a --web directory that does not exist" "$?" 2
grep -q -- "--web (LOOKALIKE_WEB): static root" "$TMP/badweb.log" && ok "the message names the flag" ||
    fail "bad --web message: $(cat "$TMP/badweb.log")"

# ---- the catalogue: 3 photos per category with shop-like metadata, plus the injection ----
SUB=$TMP/photos
mkdir -p "$SUB"
META=$SUB/metadata.csv
echo "path,id,title,category,brand,price,currency,sizes" >"$META"
i=0
for cat in $(tail -n +2 "$PRODUCTS/metadata.csv" | cut -d, -f3 | sort -u); do
    n=0
    while IFS=, read -r path _ _ image_id _; do
        n=$((n + 1))
        i=$((i + 1))
        brand=$([ $((i % 2)) -eq 0 ] && echo "Sông Hồng" || echo "Mây Trắng")
        sizes=$([ "$cat" = shoes ] && echo "39;40;41" || echo "S;M;L")
        [ $((i % 3)) -eq 0 ] && sizes=XL
        echo "$path,$image_id,${cat^} no. $n,$cat,$brand,$((90000 + i * 15000)),VND,$sizes" >>"$META"
    done < <(grep -E "^[^,]*,[^,]*,$cat," "$PRODUCTS/metadata.csv" | head -3)
done
xss=$(grep -E '^[^,]*,[^,]*,shoes,' "$PRODUCTS/metadata.csv" | sed -n 4p | cut -d, -f1)
echo "$xss,xss-1,\"<img src=x onerror=\"\"window.__pwned=1\"\">Sneaky <b>bold</b> shoe\",shoes,Mây Trắng,555000,VND,42" >>"$META"
tail -n +2 "$META" | cut -d, -f1 | while read -r p; do
    mkdir -p "$SUB/$(dirname "$p")"
    cp "$PRODUCTS/$p" "$SUB/$p"
done
expect_eq "fixture has 31 products" "$(($(wc -l <"$META") - 1))" 31
printf 'this is not a photo\n' >"$TMP/broken.jpg"
printf 'plain text notes\n' >"$TMP/notes.txt"

DATA=$TMP/data
timeout 300 "$LK" ingest --data "$DATA" --metadata "$META" "$SUB" >"$TMP/ingest.log" 2>&1 ||
    {
        fail "ingest: $(tail -3 "$TMP/ingest.log")"
        exit 1
    }
grep -q "31 added" "$TMP/ingest.log" && ok "ingest adds 31 products" || fail "ingest: $(tail -2 "$TMP/ingest.log")"

# start_server DATA_DIR ARGS...: serve on a free port (read back from the "listening" log
# line); sets SERVER_PID, LOG and B.
STARTS=0
start_server() {
    local data=$1 port=
    shift
    STARTS=$((STARTS + 1))
    LOG=$TMP/server-$STARTS.log
    "$LK" serve --data "$data" --port 0 "$@" 2>"$LOG" &
    SERVER_PID=$!
    for _ in $(seq 1 600); do
        port=$(grep -o '"msg":"listening".*"port":[0-9]*' "$LOG" 2>/dev/null | grep -o '"port":[0-9]*' | cut -d: -f2)
        [ -n "$port" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        echo "server did not start:"
        cat "$LOG"
        exit 1
    fi
    B=http://127.0.0.1:$port
}
stop_server() {
    kill "$SERVER_PID"
    wait "$SERVER_PID" || fail "server exited with $? on SIGTERM"
    SERVER_PID=
}
head_of() { curl -s --max-time 30 -o /dev/null -w '%{http_code} %{content_type}' "$@"; }

# ---- --web '': the API alone ----
start_server "$TMP/api-only" --web ''
expect_eq "--web '' leaves / unrouted" "$(head_of "$B/" | cut -d' ' -f1)" 404
expect_eq "--web '' still serves the API" "$(head_of "$B/api/facets")" "200 application/json"
stop_server

# ---- serve with the default web directory (the build points it at web/) ----
start_server "$DATA"
expect_eq "GET / serves the page" "$(head_of "$B/")" "200 text/html; charset=utf-8"
expect_eq "GET /ui serves it too" "$(head_of "$B/ui")" "200 text/html; charset=utf-8"
expect_eq "GET /ui/app.js serves the script" "$(head_of "$B/ui/app.js")" "200 text/javascript; charset=utf-8"
expect_eq "GET /ui/app.css serves the style sheet" "$(head_of "$B/ui/app.css")" "200 text/css; charset=utf-8"
expect_eq "a missing file is a JSON 404" "$(head_of "$B/ui/nothing-here.js")" "404 application/json"
expect_eq "no climbing out of web/" "$(head_of --path-as-is "$B/ui/../Makefile" | cut -d' ' -f1)" 400
expect_eq "the API still answers beside the page" "$(head_of "$B/api/facets")" "200 application/json"
expect_eq "an unknown API route is still a 404" "$(head_of "$B/api/nope")" "404 application/json"
expect_eq "a wrong method on an API route is still a 405" "$(head_of -X DELETE "$B/api/facets" | cut -d' ' -f1)" 405
expect_eq "a POST outside the API is a 404" "$(head_of -X POST "$B/nope" | cut -d' ' -f1)" 404
etag=$(curl -s --max-time 30 -D - -o /dev/null "$B/" | tr -d '\r' | awk -F': ' 'tolower($1)=="etag"{print $2}')
expect_eq "an unchanged page revalidates to 304" "$(head_of -H "If-None-Match: $etag" "$B/" | cut -d' ' -f1)" 304
expect_eq "the page is revalidated on every load" \
    "$(curl -s --max-time 30 -D - -o /dev/null "$B/" | tr -d '\r' | awk -F': ' 'tolower($1)=="cache-control"{print $2}')" \
    no-cache
if grep -rEn '(src|href)="(https?:)?//' web/ || grep -rEn "url\((['\"]?)(https?:)?//" web/; then
    fail "the page refers to another origin"
else
    ok "the page refers to nothing outside this server"
fi

# ---- the browser ----
OUT=$BUILD/test-logs/e2e
mkdir -p "$OUT"
query=$(grep -E ',hat,' "$META" | head -1)
dress=$(grep -E ',dress,' "$META" | head -1)
BASE_URL=$B OUT=$OUT PROFILE_DIR=$TMP/profile \
    QUERY_PHOTO="$SUB/$(cut -d, -f1 <<<"$query")" QUERY_ID=$(cut -d, -f2 <<<"$query") \
    DRESS_PHOTO="$SUB/$(cut -d, -f1 <<<"$dress")" DRESS_ID=$(cut -d, -f2 <<<"$dress") \
    BROKEN_PHOTO=$TMP/broken.jpg NOT_A_PHOTO=$TMP/notes.txt \
    timeout 180 node "$HERE/ui.test.mjs"
rc=$?
[ $rc -eq 0 ] && ok "browser tests" || fail "browser tests exited with $rc"

kill -0 "$SERVER_PID" 2>/dev/null && ok "the server is still up" || fail "the server died"
if [ -n "${E2E_SCREENSHOT:-}" ] && [ -f "$OUT/desktop-photo-search.png" ]; then
    # A 256-colour palette (octree: small swatches keep their hue) keeps the README's picture
    # small; Debian's python3 with its PIL.
    scripts/deps.sh python3-pil || exit 1
    /usr/bin/python3 -c "import sys; from PIL import Image; Image.open(sys.argv[1]).convert('RGB').quantize(256, method=Image.Quantize.FASTOCTREE).save(sys.argv[2], optimize=True)" \
        "$OUT/desktop-photo-search.png" "$E2E_SCREENSHOT" && ok "wrote $E2E_SCREENSHOT" || fail "screenshot"
fi
[ $FAILS -eq 0 ] || {
    echo "server log tail:"
    tail -20 "$LOG"
}
echo "$FAILS failed"
[ $FAILS -eq 0 ]
