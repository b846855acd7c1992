#!/usr/bin/env bash
# Wall time of a 10M-row job through a real daemon with chunking off, and
# with chunking on and 1, 2 and 3 task nodes; medians of ROUNDS runs each,
# all settings interleaved round by round so that machine noise spreads
# over every setting alike.
#
#   benches/nodes.sh [ROWS] [ROUNDS] [light|heavy]
#
# light: stage 1 is six cheap row-local tasks, so reading the input (stage 0,
# one node) is most of the work. heavy: stage 1 also raises three columns
# to fractional powers twice each (libm pow, about 20 ns a value), so the
# per-row work outweighs the read.
#
# Needs python3 with numpy (to write the input) and a release build of rtl.
set -euo pipefail
rows=${1:-10000000}
rounds=${2:-5}
weight=${3:-light}
top=$(cd "$(dirname "$0")/.." && pwd)
rtl="$top/target/release/rtl"
[ -x "$rtl" ] || cargo build --release --manifest-path "$top/Cargo.toml"
work=$(mktemp -d)
homes=()
cleanup() {
    for home in "${homes[@]}"; do RTL_HOME="$home" "$rtl" stop >/dev/null 2>&1 || true; done
    rm -rf "$work"
}
trap cleanup EXIT

python3 - "$work/big.npz" "$rows" <<'EOF'
import sys, numpy as np
path, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(1)
np.savez(path, x=rng.random(n) * 100 + 1, y=rng.random(n) * 50 + 2,
         n=np.arange(n, dtype=np.int64) % 97)
EOF
extra=""
if [ "$weight" = heavy ]; then
    extra=$(for c in x y s x y s; do
        printf ',\n    {"power": {"operations": [{"a": "%s", "b": 1.37, "column": "p%s"}]}}' "$c" "$c"
    done)
fi
cat >"$work/job.json" <<EOF
{
  "0": {"tasks": {"open_array": {"filename": "big", "extension": "npz"}}},
  "1": {"tasks": [
    {"add": {"operations": [{"a": "x", "b": "y", "column": "s"}]}},
    {"divide": {"operations": [{"a": "s", "b": 3.5, "column": "q"}]}},
    {"log": {"operations": [{"a": "q", "column": "l"}]}},
    {"square_root": {"operations": [{"a": "s", "column": "r"}]}},
    {"power": {"operations": [{"a": "y", "b": 1.5, "column": "p"}]}}$extra,
    {"filter": {"operations": [{"column": "n", "method": "lt", "value": 90}]}}
  ]}
}
EOF

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

settings=("false 1" "true 1" "true 2" "true 3")
for setting in "${settings[@]}"; do
    read -r chunking workers <<<"$setting"
    home="$work/home-$chunking-$workers"
    mkdir -p "$home"
    cat >"$home/rtl.toml" <<EOF
relay_port = $(free_port)
node_port = $(free_port)
plot_port = $(free_port)
plot_workers = 0
task_workers = $workers
chunking = $chunking
chunking_size = $((rows / 10))
cache_map_size = "4GiB"
profile = true
EOF
    RTL_HOME="$home" "$rtl" start >/dev/null
    homes+=("$home")
done

# Two figures per run: the client's elapsed time (submit to result table
# in hand) and the relay's (submit to result sent), from its PROFILE line.
declare -A times relay_times
for round in $(seq "$rounds"); do
    for setting in "${settings[@]}"; do
        read -r chunking workers <<<"$setting"
        home="$work/home-$chunking-$workers"
        ms=$(RTL_HOME="$home" "$rtl" run --connect "$work/job.json" |
            awk '/^Elapsed:/ {print $2}')
        times[$setting]+="$ms "
        relay_ms=$(grep 'ms in the relay' "$home/log/relay.log" | tail -n 1 | awk '{print $(NF-4)}')
        relay_times[$setting]+="$relay_ms "
    done
done

median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "rows=$rows rounds=$rounds job=$weight chunking_size=$((rows / 10)) cores=$(nproc)"
printf '%-26s %12s %12s   %s\n' setting "client ms" "relay ms" "client runs (sorted)"
for setting in "${settings[@]}"; do
    read -r chunking workers <<<"$setting"
    sorted=$(tr ' ' '\n' <<<"${times[$setting]}" | grep . | sort -n | tr '\n' ' ')
    label="chunking $chunking, $workers node(s)"
    printf '%-26s %12s %12s   %s\n' "$label" "$(median "${times[$setting]}")" \
        "$(median "${relay_times[$setting]}")" "$sorted"
done
