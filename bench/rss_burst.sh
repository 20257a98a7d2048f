#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/rss_burst.sh SERVER [ARGS...] — memory of an HTTP server around a
# burst of connections: starts SERVER ARGS --port 0 --procs 2 (weft's
# examples/httpd, or bench/peers/nginx/http_hello.sh: 2 workers, access
# log off), then BENCH_RSS_BURSTS times (1): opens BENCH_RSS_CONNS
# (10,000) keep-alive connections, at most 256 connects in flight, sends
# GET /hello on each and reads its 200, holds them all open, then closes
# them all. Prints, in KiB, the resident set summed over the server's
# processes (nginx's master and workers; not the wrapper shell):
#   rss_before_kib N    after start, before any connection
#   rss_peak_kib N      with every connection of the last burst open
#   rss_after_kib N     BENCH_RSS_AFTER seconds (5) after the last burst
# and, for several bursts, rss_after_kib_burst_<i> after each. Fails if a
# request was not answered 200.
set -u
export LC_ALL=C
. "$(dirname "${BASH_SOURCE[0]}")/server.sh"

[[ $# -ge 1 ]] || { echo "usage: $0 SERVER [ARGS...]" >&2; exit 2; }
conns=${BENCH_RSS_CONNS:-10000}
bursts=${BENCH_RSS_BURSTS:-1}
after=${BENCH_RSS_AFTER:-5}
command -v python3 >/dev/null || { echo "python3 not installed" >&2; exit 1; }
raise_nofile $((conns + 1024)) || exit 1
start_server "${BENCH_PROCS:-2}" "$@" --max-conns $((conns + 1024)) || exit 1

# tree_rss_kib: VmRSS summed over the server and the processes under it,
# shells excluded (nginx's wrapper script is not the server).
tree_rss_kib() {
    local p t=0
    for p in $(server_pids); do
        [[ $(cat "/proc/$p/comm" 2>/dev/null) == @(bash|sh) ]] && continue
        t=$((t + $(awk '$1 == "VmRSS:" { print $2 }' "/proc/$p/status" \
                       2>/dev/null) + 0))
    done
    echo "$t"
}

# The burst's client: prints "peak" once every connection has its answer,
# then waits for a line on stdin before closing them all.
client() {
    python3 - "$SERVER_PORT" "$conns" <<'EOF'
import asyncio, sys

port, n = int(sys.argv[1]), int(sys.argv[2])
REQ = b"GET /hello HTTP/1.1\r\nHost: bench\r\n\r\n"

async def one(gate, conns):
    async with gate:
        r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(REQ)
    head = await r.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(head[:40])
    conns.append(w)

async def main():
    gate, conns = asyncio.Semaphore(256), []
    await asyncio.gather(*(one(gate, conns) for _ in range(n)))
    print("peak", len(conns), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for w in conns:
        w.close()

asyncio.run(main())
EOF
}

echo "rss_before_kib $(tree_rss_kib) KiB"
for ((i = 1; i <= bursts; i++)); do
    coproc CLIENT { client; }
    read -r word _ <&"${CLIENT[0]}"
    [[ $word == peak ]] || { echo "the burst's client failed" >&2; exit 1; }
    peak=$(tree_rss_kib)
    echo >&"${CLIENT[1]}"
    wait "$CLIENT_PID" || { echo "the burst's client failed" >&2; exit 1; }
    CLIENT_PID=
    pause "$after"
    ((bursts > 1)) && echo "rss_after_kib_burst_$i $(tree_rss_kib) KiB"
done
echo "rss_peak_kib $peak KiB"
echo "rss_after_kib $(tree_rss_kib) KiB"
