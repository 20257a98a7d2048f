# SPDX-License-Identifier: MIT
# bench/server.sh — sourced by the server benchmarks' drivers (http_hello.sh,
# c10k.sh): raising the open-file limit, starting a server program that
# follows the servers' CLI protocol (`--port 0 --procs N` on the command
# line; prints "listening on PORT" on stdout once it accepts connections),
# stopping it whatever way the driver ends, and reading its RSS.
#
# After start_server: SERVER_PID (the program's process) and SERVER_PORT.

SERVER_PID=
SERVER_PORT=
SERVER_DIR=
CLIENT_PID=

# raise_nofile N: soft (and, if needed and allowed, hard) RLIMIT_NOFILE to
# at least N for this shell and what it starts; fails if it cannot.
raise_nofile() {
    local hard
    hard=$(ulimit -Hn)
    if [[ $hard != unlimited && $hard -lt $1 ]]; then
        ulimit -Hn "$1" 2>/dev/null || {
            echo "cannot raise the open-file limit to $1 (hard limit $hard)" >&2
            return 1
        }
    fi
    [[ $(ulimit -Sn) != unlimited && $(ulimit -Sn) -lt $1 ]] && ulimit -Sn "$1"
    return 0
}

# stop_server: ends the client (see run_client) and the server (SIGTERM,
# then SIGKILL after 5 s); safe to call twice, and called by the EXIT trap
# below.
stop_server() {
    trap '' TERM INT  # a second signal must not cut the clean-up short
    if [[ -n $CLIENT_PID ]]; then
        kill -TERM "$CLIENT_PID" 2>/dev/null
        wait "$CLIENT_PID" 2>/dev/null
        CLIENT_PID=
    fi
    if [[ -n $SERVER_PID ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null
        for _ in $(seq 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
        SERVER_PID=
    fi
    [[ -n $SERVER_DIR ]] && rm -rf "$SERVER_DIR"
    SERVER_DIR=
}
trap stop_server EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# start_server PROCS CMD [ARGS...]: runs CMD ARGS --port 0 --procs PROCS,
# its stderr on ours, and waits up to 10 s for its "listening on PORT".
# Fails (saying why on stderr) if it exits or stays silent.
start_server() {
    local procs=$1 line
    shift
    SERVER_DIR=$(mktemp -d /tmp/weft-bench.XXXXXX) || return 1
    "$@" --port 0 --procs "$procs" </dev/null >"$SERVER_DIR/out" &
    SERVER_PID=$!
    for _ in $(seq 1000); do
        line=$(grep -m1 '^listening on [0-9]' "$SERVER_DIR/out")
        if [[ -n $line ]]; then
            SERVER_PORT=${line##* }
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || {
            wait "$SERVER_PID"
            echo "server exited ($?) before listening: $*" >&2
            SERVER_PID=
            return 1
        }
        sleep 0.01
    done
    echo "server did not say \"listening on PORT\" within 10 s: $*" >&2
    return 1
}

# run_client OUT CMD [ARGS...]: runs a load generator, its output (stdout
# and stderr) into the file OUT, and returns its exit status. It runs in the
# background so that a signal to the driver is handled at once, not after
# the client ends.
run_client() {
    local out=$1 rc
    shift
    "$@" >"$out" 2>&1 &
    CLIENT_PID=$!
    wait "$CLIENT_PID"
    rc=$?
    CLIENT_PID=
    return $rc
}

# children_cpu: sets CHILDREN_CPU to the CPU time of this shell's
# children that have ended, as bash's `times` prints it ("0m1.234s
# 0m0.567s": user, system), run in this shell (in a $(...) subshell it
# would see none) and read with builtins only, so that it starts no child
# of its own. Called before and after run_client, the difference is the
# client's; cpu_seconds turns a reading into seconds. Needs start_server's
# SERVER_DIR.
children_cpu() {
    local _ user sys
    times >"$SERVER_DIR/times"
    { read -r _ && read -r user sys; } <"$SERVER_DIR/times"
    CHILDREN_CPU="$user $sys"
}

# cpu_seconds READING: a children_cpu reading in seconds.
cpu_seconds() {
    awk -v r="$1" 'BEGIN { n = split(r, f, " "); t = 0
        for (i = 1; i <= n; i++) { split(f[i], a, /[ms]/); t += a[1] * 60 + a[2] }
        printf "%.3f\n", t }'
}

# pause SECONDS: sleep, but let a signal to the driver through at once (a
# foreground sleep holds its trap back until the sleep ends).
pause() {
    sleep "$1" &
    wait $!
}

# server_pids: the server's process and every process under it (nginx's
# master and workers), one line each.
server_pids() {
    local frontier=$SERVER_PID next p
    while [[ -n $frontier ]]; do
        echo "$frontier" | tr ' ' '\n'
        next=""
        for p in $frontier; do
            next+=" $(pgrep -P "$p" | tr '\n' ' ')"
        done
        frontier=$(echo $next)
    done
}

# server_rss: the server's resident set size in bytes (VmRSS).
server_rss() {
    awk '$1 == "VmRSS:" { print $2 * 1024 }' "/proc/$SERVER_PID/status"
}

# server_sockets: how many sockets the server has open.
server_sockets() {
    find "/proc/$SERVER_PID/fd" -mindepth 1 -lname 'socket:*' 2>/dev/null |
        wc -l
}
