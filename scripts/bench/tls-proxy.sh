#!/bin/sh
# serial_bench.py --cmd wrapper for the TLS cost benchmark (docs/BENCHMARKS.md):
# `ttyward bridge` on a free port Q, behind a socat proxy on the harness's port
# that unwraps TLS (mode "tls": bridge --secure encrypted, socat OPENSSL:Q) or
# passes plain TCP (mode "plain": the same proxy hop, no TLS), so the two runs
# differ only in TLS. The proxy is detached from this process tree (the
# harness sums CPU over the tree, which must be ttyward's alone); its pid is
# appended to $TTYWARD_BENCH_PIDS so the caller can stop it afterwards.
#
#   tls-proxy.sh PORT DEV BAUD tls|plain
set -eu
port=$1 dev=$2 baud=$3 mode=$4
bin=${TTYWARD_BIN:-target/release/ttyward}
pids=${TTYWARD_BENCH_PIDS:-/tmp/ttyward-bench-proxies.pids}
q=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
case $mode in
tls) upstream="OPENSSL:127.0.0.1:$q,verify=0,nodelay"; secure=encrypted ;;
plain) upstream="TCP:127.0.0.1:$q,nodelay"; secure=off ;;
*) echo "mode must be tls or plain" >&2; exit 64 ;;
esac
(
    setsid socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork,nodelay" "$upstream" </dev/null >/dev/null 2>&1 &
    echo $! >>"$pids"
)
exec "$bin" bridge "$dev@127.0.0.1:$q" --baud "$baud" --secure "$secure"
