#!/bin/bash
# The files in etc/ load the module at instance start, by themselves: the
# flux-modprobe entry (modprobe.d/prometheus.toml + rc1.d/prometheus.py) and
# the legacy rc1.d script. Each test starts its own instance with the files
# on the search paths flux reads, and the module on the broker's module path
# by name, as `make install` leaves it.
. "$(dirname "$0")/lib.sh"
if ! flux=$(find_flux); then
    echo "1..0 # SKIP flux-core is not installed (no flux on PATH or via pkg-config)"
    exit 0
fi
[ -f "$MODULE_SO" ] || (cd "$REPO" && cargo build --release --quiet) >&2

plan 14

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/modules" "$dir/modprobe/modprobe.d" "$dir/modprobe/rc1.d" "$dir/legacy/rc1.d" "$dir/legacy/rc3.d"
ln -s "$MODULE_SO" "$dir/modules/prometheus.so"
cp "$REPO/etc/modprobe/modprobe.d/prometheus.toml" "$dir/modprobe/modprobe.d/"
cp "$REPO/etc/modprobe/rc1.d/prometheus.py" "$dir/modprobe/rc1.d/"
cp "$REPO/etc/rc1.d/prometheus" "$dir/legacy/rc1.d/"
cp "$REPO/etc/rc3.d/prometheus" "$dir/legacy/rc3.d/"

# What a started instance shows: the ranks the module runs on, whether it
# came after job-list and resource, and whether it answers.
inspect='
    for r in 0 1; do flux exec -r $r flux module list | awk -v r=$r "\$1 == \"prometheus\" { print \"loaded on rank\", r }"; done
    flux exec -r 1 flux module stats prometheus | jq -r "if .url then \"rank 1 serves\" else \"rank 1 samples for rank \" + (.sampler.rank | tostring) end"
    url=$(flux module stats prometheus | jq -r .url)
    curl -sf --max-time 5 "$url" | grep -q "^flux_prometheus_build_info" && echo "scrape ok"
'

rc=0
out=$(PATH=$(dirname "$flux"):$PATH; modprobe_also_reads "$dir/modprobe"; FLUX_MODULE_PATH_PREPEND="$dir/modules" \
    "$flux" start --test-size=2 bash -c "$inspect
        flux modprobe show prometheus 2>/dev/null | jq -r '.after | join(\",\")'" 2>&1) || rc=$?
diag "$out"
is "$rc" 0 "modprobe entry: the instance shuts down cleanly (rc3 unloads the module)"
ok "modprobe entry: loaded by itself on rank 0" grep -qx "loaded on rank 0" <<<"$out"
ok "modprobe entry: and on the other ranks, where it opens no port and samples" \
    bash -c 'grep -qx "loaded on rank 1" <<<"$1" && grep -qx "rank 1 samples for rank 1" <<<"$1"' _ "$out"
ok "modprobe entry: serving metrics (default listen address)" grep -qx "scrape ok" <<<"$out"
ok "modprobe entry: ordered after resource, job-manager and job-list" grep -qx "resource,job-manager,job-list" <<<"$out"

rc=0
out=$(FLUX_RC_EXTRA="$dir/legacy" FLUX_MODULE_PATH_PREPEND="$dir/modules" \
    FLUX_PROMETHEUS_ARGS="listen=127.0.0.1:0" \
    "$flux" start --test-size=2 bash -c "$inspect" 2>&1) || rc=$?
diag "$out"
is "$rc" 0 "legacy scripts: the instance shuts down cleanly (rc3.d unloads the module)"
ok "legacy rc1.d script: loaded on every rank" test "$(grep -c "^loaded on rank" <<<"$out")" = 2
ok "legacy rc1.d script: serving metrics with FLUX_PROMETHEUS_ARGS" grep -qx "scrape ok" <<<"$out"
# A port already taken at instance start: the instance starts all the same,
# the module stays loaded, says why in flux dmesg and flux module stats, and
# serves once the port frees. (A person's flux module load fails at once:
# t0001.)
holder=$(mktemp -u)
mkfifo "$holder"
/usr/bin/python3 -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
print(s.getsockname()[1], flush=True)
sys.stdin.read()
' <"$holder" >"$dir/port" &
holder_pid=$!
exec 7>"$holder"
for _ in $(seq 50); do [ -s "$dir/port" ] && break; sleep 0.1; done
port=$(cat "$dir/port")
rc=0
out=$(PATH=$(dirname "$flux"):$PATH; modprobe_also_reads "$dir/modprobe"; FLUX_MODULE_PATH_PREPEND="$dir/modules" \
    HOLDER_PID=$holder_pid "$flux" start --test-size=1 "$(listen_config "$dir" "127.0.0.1:$port")" bash -c '
        flux module list | awk "\$1 == \"prometheus\" { print \"loaded\" }"
        flux module stats prometheus | jq -r "\"listen_error: \" + .listen_error"
        flux dmesg | grep -q "prometheus.*Address already in use.*tries again" && echo "said so in dmesg"
        kill $HOLDER_PID
        for i in $(seq 80); do
            url=$(flux module stats prometheus | jq -r ".url // empty")
            [ -n "$url" ] && break
            sleep 0.25
        done
        curl -sf --max-time 5 "$url" | grep -q "^flux_prometheus_build_info" && echo "serving after the port freed"
        flux module stats prometheus | jq -r "\"listen_error after: \" + (.listen_error // \"none\")"
    ' 2>&1) || rc=$?
exec 7>&-
wait "$holder_pid" 2>/dev/null
rm -f "$holder"
diag "$out"
is "$rc" 0 "port taken at instance start: the instance starts and exits cleanly"
ok "port taken at instance start: the module stays loaded" grep -qx loaded <<<"$out"
ok "port taken at instance start: flux module stats says why" grep -q "^listen_error: cannot listen on 127.0.0.1:$port: Address already in use.*trying again in" <<<"$out"
ok "port taken at instance start: flux dmesg says why" grep -qx "said so in dmesg" <<<"$out"
ok "port taken at instance start: serves once the port frees" grep -qx "serving after the port freed" <<<"$out"
ok "port taken at instance start: the error is gone once serving" grep -qx "listen_error after: none" <<<"$out"
done_testing
