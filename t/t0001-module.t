#!/bin/bash
# Loading, arguments, stats, removal and reloading of the module in a real
# broker.
. "$(dirname "$0")/lib.sh"
run_inside_flux 2

plan 28

exports=$(nm -D --defined-only "$MODULE_SO" | awk '$2 ~ /[TDBR]/ { print $3 }' | grep -v -E '^(_init|_fini|__bss_start|_edata|_end)$')
is "$exports" "mod_main" "the shared object exports mod_main and nothing else"

ok "load by path with --name=prometheus and listen port 0" \
    flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0
url=$(module_url)
port=${url##*:}; port=${port%%/*}
ok "flux module stats reports the real URL ($url)" test "$port" -gt 0
ctype=$(curl -s -o /dev/null -w '%{content_type}' "$url")
is "$ctype" "text/plain; version=0.0.4; charset=utf-8" "scrape answers with the text format content type"
ok "stats show the jobs collector healthy" \
    bash -c "for i in \$(seq 50); do flux module stats prometheus | jq -e '.collectors.jobs.healthy' >/dev/null && exit 0; sleep 0.1; done; exit 1"

# The HTTP thread's short time slice: granted (a kernel without EEVDF
# grants it and ignores it) or refused with the reason, never silent.
slice=$(flux module stats prometheus | jq -r '.http_wakeup_slice_us // "refused: \(.http_wakeup_slice_error)"')
case $slice in
"refused: null") is "$slice" 100 "stats report the HTTP thread's 100 µs time slice" ;;
refused:*) skip "stats report the HTTP thread's 100 µs time slice" "this kernel or sandbox refuses sched_setattr ($slice)" ;;
*) is "$slice" 100 "stats report the HTTP thread's 100 µs time slice" ;;
esac
# Where the kernel shows each thread's slice (EEVDF), the HTTP thread has
# it and the broker's own thread keeps the default.
broker_pid=$(flux getattr broker.pid)
http_sched=$(grep -l '^prometheus-http$' /proc/"$broker_pid"/task/*/comm | head -1)
http_sched=${http_sched%/comm}/sched
if grep -q '^se.slice' "$http_sched" 2>/dev/null; then
    got=$(awk '$1 == "se.slice" { print $3 }' "$http_sched")
    broker=$(awk '$1 == "se.slice" { print $3 }' /proc/"$broker_pid"/task/"$broker_pid"/sched)
    is "$got/$([ "$broker" != 100000 ] && echo default)" "100000/default" \
        "the kernel runs the prometheus-http thread with a 100 µs slice, the broker's thread with its own"
else
    skip "the kernel runs the prometheus-http thread with a 100 µs slice" "this kernel shows no se.slice"
fi

# Bad arguments: load fails, says why in the broker log, broker stays up.
bad_arg() {
    local desc=$1 expect=$2
    shift 2
    flux dmesg -C
    if flux module load --name=prom-bad "$MODULE_SO" "$@" 2>/dev/null; then
        flux module remove prom-bad
        return 1
    fi
    flux dmesg | grep -F -- "$expect" >/dev/null
}
ok "unknown key is refused with a message naming it" \
    bad_arg unknown "unknown argument 'bogus' (valid keys: listen" bogus=1
ok "malformed address is refused with a message naming it" \
    bad_arg malformed "listen=300.1.2.3:80: malformed address" listen=300.1.2.3:80
ok "an argument without = is refused" \
    bad_arg noeq "argument 'listen' is not key=value" listen
ok "a port already in use is refused" \
    bad_arg inuse "cannot listen on 127.0.0.1:$port: Address already in use" listen=127.0.0.1:$port
load_err=$(flux module load --name=prom-bad "$MODULE_SO" listen=127.0.0.1:$port 2>&1)
ok "flux module load itself prints the errno ($load_err)" grep -q "Address already in use" <<<"$load_err"
ok "the broker is still up and the first module still serves" scrapes "$url"

# Remove and load again at once on the same port.
ok "flux module remove prometheus" flux module remove prometheus
ok "load again at once on the same port" \
    flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:$port
ok "it serves on that port" scrapes "$url"

# Remove while scrapes are in flight and a slow client holds a connection.
exec 7<>/dev/tcp/127.0.0.1/$port
printf 'GET /metrics HTTP/1.1\r\nHost: x\r\n' >&7
(for i in $(seq 400); do curl -s --max-time 2 -o /dev/null "$url"; done) &
hammer=$!
sleep 0.3
ok "remove while scrapes are in flight" timeout 10 flux module remove prometheus
ok "load again while clients still connect" \
    timeout 10 flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:$port
kill $hammer 2>/dev/null; wait $hammer 2>/dev/null
exec 7>&-
ok "it serves after the reload" scrapes "$url"
flux module remove prometheus

# Installed as prometheus.so on the module search path, loaded by name. The
# broker reads FLUX_MODULE_PATH when it starts, so this takes an instance of
# its own.
moddir=$(mktemp -d)
cp "$MODULE_SO" "$moddir/prometheus.so"
listed=$(FLUX_MODULE_PATH_PREPEND="$moddir" flux start --test-size=1 \
    bash -c 'flux module load prometheus listen=127.0.0.1:0 && flux module list && flux module stats prometheus | jq -r .url && flux module remove prometheus' 2>&1)
ok "flux module load prometheus finds prometheus.so on FLUX_MODULE_PATH" grep -qw "^prometheus" <<<"$listed"
ok "and it serves there" grep -q "^http://127.0.0.1:[1-9][0-9]*/metrics" <<<"$listed"
rm -rf "$moddir"

# The broker cancels the module thread in two cases: flux module remove
# --cancel, and an instance that exits with the module still loaded. Neither
# may crash the broker, and the HTTP thread must be gone either way.
flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:$port
ok "flux module remove --cancel" timeout 20 flux module remove --cancel prometheus
ok "the port is closed after a cancel" bash -c "! curl -s --max-time 2 -o /dev/null $url"
ok "load again on the same port after a cancel" \
    flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:$port
flux module remove prometheus

# A cancel that arrives while the module thread is busy with requests: libflux
# holds a message queue's mutex across cancellation points, so a thread
# cancelled there left the mutex held, and the broker hung at its next message
# for the module. Requests flow from two clients, 200 outstanding at a time.
flood() {
    flux python -c '
import flux, sys
h = flux.Flux()
while True:
    futures = [h.rpc("prometheus.ping", {}) for _ in range(200)]
    for f in futures:
        try:
            f.get()
        except Exception:
            sys.exit(0)
' 2>/dev/null
}
cancels=0
for i in $(seq 15); do
    flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:$port || break
    flood & f1=$!
    flood & f2=$!
    sleep 0.$((RANDOM % 5 + 1))
    timeout 20 flux module remove --cancel prometheus || break
    kill $f1 $f2 2>/dev/null
    wait $f1 $f2 2>/dev/null
    cancels=$i
done
kill $f1 $f2 2>/dev/null
ok "15 cancels while requests flow each end ($cancels did)" test "$cancels" -eq 15
ok "the broker still answers after them" timeout 10 flux module list
ok "the port is closed after them" bash -c "! curl -s --max-time 2 -o /dev/null $url"
flux start --test-size=1 bash -c "flux module load --name=prometheus $MODULE_SO listen=127.0.0.1:0 && flux submit --wait true >/dev/null" >/dev/null 2>&1
rc=$?
ok "an instance exiting with the module loaded ends normally (rc $rc: 1 is Flux's 'not properly shut down', not a crash)" test $rc -le 1
done_testing
