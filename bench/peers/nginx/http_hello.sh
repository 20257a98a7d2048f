#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/peers/nginx/http_hello.sh --port P --procs N [--max-conns N]: B7's
# nginx peer behind the CLI of weft's examples/httpd. Writes a minimal
# nginx.conf into a temporary directory (N worker processes, access log off,
# GET /hello answered "hello\n" with keep-alive), runs nginx in the
# foreground on 127.0.0.1:P (P = 0: a free port it picks), prints
# "listening on PORT" once nginx accepts connections, and on SIGTERM or
# SIGINT stops nginx (master and workers) and removes the directory.
# --max-conns sets worker_connections per worker (default 4096).
set -u

port=0 procs=2 conns=4096
while [[ $# -gt 0 ]]; do
    case $1 in
    --port) port=$2 ;;
    --procs) procs=$2 ;;
    --max-conns) conns=$2 ;;
    *) echo "usage: $0 --port P --procs N [--max-conns N]" >&2; exit 2 ;;
    esac
    shift 2 || { echo "$1 needs a value" >&2; exit 2; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $NGINX ]] || { echo "nginx not installed" >&2; exit 1; }

dir=$(mktemp -d /tmp/weft-nginx.XXXXXX) || exit 1
pid=
cleanup() {
    trap '' TERM INT  # a second signal must not cut the clean-up short
    if [[ -n $pid ]]; then
        kill -TERM "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# write_conf PORT: the whole configuration; temporary files in $dir too, so
# nothing outside it is written (or needs to be writable).
write_conf() {
    cat >"$dir/nginx.conf" <<EOF
worker_processes $procs;
daemon off;
master_process on;
error_log /dev/stderr;
pid $dir/nginx.pid;
events { worker_connections $conns; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    server {
        listen 127.0.0.1:$1;
        location /hello { return 200 "hello\n"; }
    }
}
EOF
}

# free_port: a port below the ephemeral range that nothing listens on (the
# load generator's own connections take ephemeral ports).
free_port() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 12000))
        [[ -z $(ss -Hltn "sport = :$p" 2>/dev/null) ]] && { echo "$p"; return; }
    done
    return 1
}

# start PORT: starts nginx on PORT; succeeds once it accepts connections,
# fails if it exits first (the port was taken meanwhile) or takes over 10 s.
start() {
    write_conf "$1"
    "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e stderr </dev/null >&2 &
    pid=$!
    for _ in $(seq 1000); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid"; pid=; return 1; }
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.01
    done
    kill -TERM "$pid"
    wait "$pid"
    pid=
    return 1
}

for _ in 1 2 3 4 5; do
    p=$port
    [[ $p == 0 ]] && { p=$(free_port) || break; }
    if start "$p"; then
        echo "listening on $p"
        wait "$pid"
        pid=
        exit 1  # nginx is not meant to stop on its own
    fi
    [[ $port != 0 ]] && break
done
echo "nginx did not start" >&2
exit 1
