#!/usr/bin/env bash
# Cuts seed corpora for the fuzz targets from the real recordings beside the repository
# ($PINION_DATA_DIR, else ../shared/data) into fuzz/corpus/<target>/seed-*: frames of every
# venue, REST snapshot and exchange-info bodies, HTTP responses around them, the captures, the
# shipped configs, and the heads of every recording for the readers. fuzz/corpus is not
# committed (it grows under fuzzing; the campaign script merges and minimizes it).
#
# Seeds are spread over each recording (every k-th record), at most SEEDS_PER_SOURCE per source
# and SEED_MAX_BYTES each, so a fresh corpus stays small (a few MiB) and quick to load.
#
# Usage: scripts/fuzz-corpus.sh [TARGETS]      (default: every target it has seeds for)
# Env:   PINION_DATA_DIR, SEEDS_PER_SOURCE (default 64), SEED_MAX_BYTES (default 65536)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT="$(pwd)"
DATA="${PINION_DATA_DIR:-$ROOT/../shared/data}"
[ -d "$DATA" ] || { echo "fuzz-corpus: no recordings at $DATA (set PINION_DATA_DIR)" >&2; exit 1; }
[ -d "$DATA/binance" ] || { echo "fuzz-corpus: $DATA has no binance/ recordings" >&2; exit 1; }
export DATA SEEDS="${SEEDS_PER_SOURCE:-64}" MAX_BYTES="${SEED_MAX_BYTES:-65536}"
export WANT="${*:-}" OUT="$ROOT/fuzz/corpus" CONFIGS="$ROOT/configs"

python3 - <<'PY'
import glob, gzip, hashlib, json, os, re, subprocess, sys

DATA, OUT, CONFIGS = os.environ["DATA"], os.environ["OUT"], os.environ["CONFIGS"]
SEEDS, MAX_BYTES = int(os.environ["SEEDS"]), int(os.environ["MAX_BYTES"])
WANT = set(os.environ["WANT"].split())
written = {}

def put(target, data, prefix=b""):
    """Writes one seed, named by its hash (re-running adds nothing twice)."""
    if WANT and target not in WANT:
        return
    data = prefix + data[:MAX_BYTES]
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "seed-" + hashlib.sha1(data).hexdigest()[:16])
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(data)
        written[target] = written.get(target, 0) + 1

def spread(items, n=SEEDS):
    """At most n items, spread evenly over the list."""
    if len(items) <= n:
        return items
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]

def lines_of(path, limit=200_000):
    opener = gzip.open if path.endswith(".gz") else open
    if path.endswith(".zst"):
        text = subprocess.run(["zstd", "-dc", path], check=True, capture_output=True).stdout
        return text.split(b"\n")[:limit]
    with opener(path, "rb") as f:
        out = []
        for i, line in enumerate(f):
            if i >= limit:
                break
            out.append(line.rstrip(b"\n"))
        return out

def http_response(body, chunked=False):
    if chunked:
        half = len(body) // 2
        parts = [body[:half], body[half:]]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts if p) + b"0\r\n\r\n"
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        return head + payload
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body

def frame_targets(frame, venue):
    if venue == "spot":
        put("binance_spot_frame", frame)
        put("sbe_encode", frame)
        put("flat_equivalence", frame, b"\x00")
        put("live_frame", frame, b"\x00")
    elif venue == "usdm":
        put("binance_futures_frame", frame)
        put("flat_equivalence", frame, b"\x01")
        put("live_frame", frame, b"\x00")
    else:
        put("bybit_frame", frame)
        put("live_frame", frame, b"\x01")
    for num in spread(re.findall(rb'"(-?[0-9]+\.[0-9]+)"', frame), 2):
        put("decimal", num, b"\x08")

def body_targets(body):
    put("rest_snapshot", body, b"\x00")
    put("rest_snapshot", body, b"\x01")
    put("http_response", http_response(body), b"\x00\x00")
    put("http_response", http_response(body, chunked=True), b"\x07\x03")
    put("http_exchange", http_response(body))
    put("http_exchange", http_response(body, chunked=True))

# hbt: "<ns> <frame>" lines.
for path, venue in ((f"{DATA}/binance/spot-btcusdt-20240808.hbt.gz", "spot"),
                    (f"{DATA}/binance/usdm-btcusdt-20240808.hbt.gz", "usdm")):
    if not os.path.exists(path):
        print(f"fuzz-corpus: missing {path}", file=sys.stderr)
        continue
    lines = [l for l in lines_of(path) if l]
    for l in spread(lines):
        frame = l.split(b" ", 1)[-1]
        if frame.startswith(b"{\"lastUpdateId\"") or b'"lastUpdateId"' in frame[:40]:
            body_targets(frame)
        else:
            frame_targets(frame, venue)
    head = b"\n".join(lines[:200]) + b"\n"
    for t in ("input", "survey"):
        put(t, head)

# cryptofeed text: "<ts>: <frame>" (ws) and "<url> -> <ts>: <body>" (http).
ws = f"{DATA}/binance/spot-multi-20211012.cryptofeed.ws"
if os.path.exists(ws):
    lines = lines_of(ws)
    for l in spread([l for l in lines if b": {" in l]):
        frame_targets(l.split(b": ", 1)[1], "spot")
    # Its few klines and tickers, which an even spread may miss.
    for l in [l for l in lines if b": {" in l and re.search(rb'@(kline_|ticker"|miniTicker")', l)][:8]:
        frame_targets(l.split(b": ", 1)[1], "spot")
    for t in ("input", "survey"):
        put(t, b"\n".join(lines[:200]) + b"\n")
http = f"{DATA}/binance/spot-multi-20211012.cryptofeed.http"
if os.path.exists(http):
    lines = lines_of(http)
    for l in spread([l for l in lines if b": {" in l], 16):
        body_targets(l.split(b": ", 1)[1])
    for t in ("input", "survey"):
        put(t, b"\n".join(lines[:4]) + b"\n")
info = f"{DATA}/binance/spot-exchangeinfo-20211012.json.gz"
if os.path.exists(info):
    with gzip.open(info, "rb") as f:
        body = f.read()
    put("http_exchange", http_response(body))
    put("input", body)

# cryptofeed JSONL (Bybit): one JSON object a line; "recv" records carry the frame in "data".
for path in glob.glob(f"{DATA}/bybit/*.jsonl*"):
    lines = [l for l in lines_of(path, 50_000) if l]
    for t in ("input", "survey"):
        put(t, b"\n".join(lines[:100]) + b"\n")
    recs = []
    for l in lines:
        try:
            recs.append(json.loads(l))
        except ValueError:
            pass
    frames = [r["data"].encode() for r in recs if r.get("t") == "recv" and isinstance(r.get("data"), str)]
    for f in spread(frames):
        frame_targets(f, "bybit")
    for topic in (b'"topic":"kline.', b'"topic":"tickers.'):
        for f in spread([f for f in frames if topic in f], 8):
            frame_targets(f, "bybit")
    bodies = [r["data"].encode() for r in recs if r.get("t") == "http" and isinstance(r.get("data"), str)]
    for b in spread(bodies, 8):
        put("rest_snapshot", b, b"\x02")
        put("http_exchange", http_response(b))

# Captures, whole: small ones for every mode byte of the pcap target and for the picker.
for path in sorted(glob.glob(f"{DATA}/pcap/*.pcap")):
    with open(path, "rb") as f:
        cap = f.read()
    for mode in (b"\x00", b"\x01", b"\x02"):
        put("pcap", cap, mode)
    put("input", cap)
    put("survey", cap)

# .pnr seeds written here by the layout in feed/src/recording/mod.rs (CRCs and check bytes
# right), so pnr_read starts past the checks that stop blind mutation.
import struct, zlib

def pnr(records, source=b"seed", url=b"wss://stream.binance.com:9443/ws"):
    conn = struct.pack("<HBBH", 0, 0, 0, len(url)) + url
    body = source + conn
    h = 40 + len(body)
    h = (h + 7) // 8 * 8 + 8
    fixed = b"\x89PNR\r\n\x1a\n" + struct.pack("<HHIQIHHII", 1, 0, h, 1_700_000_000_000_000_000, 0, 1, 0, len(source), 0)
    head = fixed + body
    head += b"\0" * (h - 8 - len(head))
    out = head + struct.pack("<II", zlib.crc32(head), 0)
    for i, (kind, meta, payload) in enumerate(records):
        rh = bytearray(struct.pack("<QHBBIII", 1_700_000_000_000_000_000 + i, 0, kind, 0, len(meta), len(payload), 0))
        x = 0xA5
        for j in list(range(0, 11)) + list(range(12, 20)):
            x ^= rh[j]
        rh[11] = x
        n = 24 + len(meta) + len(payload)
        pad = b"\0" * ((n + 7) // 8 * 8 - n)
        crc = zlib.crc32(bytes(rh[:20]) + meta + payload + pad)
        rh[20:24] = struct.pack("<I", crc)
        out += bytes(rh) + meta + payload + pad
    return out

frames = []
for path in (f"{DATA}/binance/spot-btcusdt-20240808.hbt.gz",):
    if os.path.exists(path):
        frames = [l.split(b" ", 1)[-1][:4096] for l in lines_of(path, 64) if l]
if frames:
    put("pnr_read", pnr([(0, b"", f) for f in frames[:8]]))
    put("pnr_read", pnr([(3, b"wss://stream.binance.com:9443/ws", b"")] + [(0, b"", f) for f in frames[8:16]] + [(4, b"", b"")]))
    put("pnr_read", pnr([(1, b"https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=5", frames[0]), (5, b"", b"")]))
    put("input", pnr([(0, b"", f) for f in frames[:8]]))
    put("survey", pnr([(0, b"", f) for f in frames[:8]]))

# The shipped configs, alone and with an override after the NUL.
for path in sorted(glob.glob(f"{CONFIGS}/*.toml")):
    with open(path, "rb") as f:
        text = f.read()
    put("config_toml", text)
    put("config_toml", text + b"\0pacing.speed=2\n")

for t in sorted(written):
    print(f"fuzz-corpus: {t}: {written[t]} new seeds", file=sys.stderr)
if not written:
    print("fuzz-corpus: nothing new", file=sys.stderr)
PY

# The committed seeds (fuzz/seeds/<target>/, hand-made, 64 KiB budget) for what no recording holds.
for dir in fuzz/seeds/*/; do
    target="$(basename "$dir")"
    if [ $# -eq 0 ] || [[ " $* " == *" $target "* ]]; then
        mkdir -p "fuzz/corpus/$target"
        cp -n "$dir"* "fuzz/corpus/$target/"
    fi
done
size=$(du -sk fuzz/seeds | cut -f1)
[ "$size" -le 64 ] || echo "fuzz-corpus: fuzz/seeds is ${size} KiB, over its 64 KiB budget" >&2

# .pnr seeds: the captures converted with pinion's own writer, when a pinion binary is built.
want_pnr=1
if [ $# -gt 0 ]; then
    want_pnr=0
    for t in "$@"; do [ "$t" = pnr_read ] && want_pnr=1; done
fi
PINION_BIN="${PINION_BIN:-$ROOT/target/debug/pinion}"
if [ "$want_pnr" = 1 ]; then
    if [ -x "$PINION_BIN" ]; then
        mkdir -p fuzz/corpus/pnr_read
        n=0
        for cap in "$DATA"/pcap/*.pcap; do
            out="fuzz/corpus/pnr_read/seed-$(basename "$cap" .pcap).pnr"
            if "$PINION_BIN" convert --input "$cap" --output "$out" >/dev/null 2>&1; then
                n=$((n + 1))
            fi
        done
        echo "fuzz-corpus: pnr_read: $n recordings converted" >&2
    else
        echo "fuzz-corpus: no pinion binary at $PINION_BIN: pnr_read gets no .pnr seeds (cargo build -p pinion-engine)" >&2
    fi
fi
