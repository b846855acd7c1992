#!/usr/bin/env bash
# Peak memory of the relay and the task nodes while a job over GB of
# columns runs through a real daemon (chunking on), read from /proc.
#
#   benches/relay_memory.sh [GB] [WORKERS]
#
# The job opens an .npz of GB gigabytes (four float64 columns), runs three
# row-local tasks on it in chunks and brings the result back to `rtl run`.
# Needs python3 with numpy and a release build of rtl.
set -euo pipefail
gb=${1:-2}
workers=${2:-2}
top=$(cd "$(dirname "$0")/.." && pwd)
rtl="$top/target/release/rtl"
[ -x "$rtl" ] || cargo build --release --manifest-path "$top/Cargo.toml"
work=$(mktemp -d)
home="$work/home"
cleanup() {
    RTL_HOME="$home" "$rtl" stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

rows=$((gb * 1024 * 1024 * 1024 / 32))
python3 - "$work/big.npz" "$rows" <<'EOF'
import sys, numpy as np
path, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(1)
cols = {name: rng.random(n) * 100 + 1 for name in ("a", "b", "c", "d")}
np.savez(path, **cols)
EOF
cat >"$work/job.json" <<'EOF'
{
  "0": {"tasks": {"open_array": {"filename": "big", "extension": "npz"}}},
  "1": {"tasks": [
    {"add": {"operations": [{"a": "a", "b": "b", "column": "a"}]}},
    {"multiply": {"operations": [{"a": "c", "b": 0.5, "column": "c"}]}},
    {"filter": {"operations": [{"column": "d", "method": "gt", "value": 0}]}}
  ]}
}
EOF
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mkdir -p "$home"
cat >"$home/rtl.toml" <<EOF
relay_port = $(free_port)
node_port = $(free_port)
plot_port = $(free_port)
plot_workers = 0
task_workers = $workers
chunking_size = 1000000
cache_map_size = "$((gb * 4 + 1))GiB"
EOF
RTL_HOME="$home" "$rtl" start >/dev/null

pids() { ls "$home/run" | sed -n "s/^$1-\([0-9]*\)\.pid$/\1/p"; }
field() { awk -v k="$2:" '$1 == k {print int($2 / 1024)}' "/proc/$1/status"; }

# RssAnon has no peak of its own in /proc: sample it while the job runs.
relay=$(pids relay)
peak_anon=0
(
    while kill -0 "$relay" 2>/dev/null; do
        field "$relay" RssAnon
        sleep 0.01
    done
) >"$work/anon" &
sampler=$!
start=$(date +%s.%N)
RTL_HOME="$home" "$rtl" run --connect "$work/job.json" | grep -E '^(Elapsed|Result)'
end=$(date +%s.%N)
kill "$sampler" 2>/dev/null || true
peak_anon=$(sort -n "$work/anon" | tail -n 1)

echo "columns: $gb GiB ($rows rows x 4 float64), chunks of 1,000,000 rows, $workers task nodes"
echo "wall: $(echo "$end - $start" | bc) s"
printf '%-10s %8s %16s %16s\n' process pid "peak RSS MiB" "peak anon MiB"
printf '%-10s %8s %16s %16s\n' relay "$relay" "$(field "$relay" VmHWM)" "$peak_anon"
for pid in $(pids tasknode); do
    printf '%-10s %8s %16s %16s\n' tasknode "$pid" "$(field "$pid" VmHWM)" "-"
done
