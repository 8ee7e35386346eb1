#!/bin/bash
# Running jobs' samples go up the overlay tree: the module on each rank
# other than 0 holds the batches of the ranks below with its own and
# passes them on in one bundle, so that rank 0 takes a few messages
# whatever the size of the instance. A rank whose module is not loaded is
# passed over: the ranks below it send to rank 0 directly, and try it
# again after ten periods; a bad bundle, or a bad batch in one, is refused
# with a message that says why, and the rest are taken. The brokers here
# are a chain: 0, 1, 2, 3.
. "$(dirname "$0")/lib.sh"
run_inside_flux 4 -Stbon.topo=kary:1

export FLUX_EXEC_PATH_PREPEND=$REPO/target/release
plan 13

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
shell_plugin_rc "$dir/rc.lua"
rc=(-o userrc="$dir/rc.lua")

flux exec -r all flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 \
    sample-interval=2s
url=$(module_url)
value() { value_at "$url" "$1"; }
wait_for() { wait_for_value "$url" "$1" "$2"; }
# Waits up to 30 s for series $1 to read at least $2.
wait_for_at_least() {
    local _
    for _ in $(seq 60); do
        [ "$(value "$1")" -ge "$2" ] 2>/dev/null && return 0
        sleep 0.5
    done
    return 1
}
relay() { flux exec -r "$1" flux module stats prometheus | jq ".relay.$2"; }
# Waits up to 30 s for relay figure $2 of rank $1 to be at least $3.
wait_for_relay() {
    local _
    for _ in $(seq 60); do
        [ "$(relay "$1" "$2")" -ge "$3" ] && return 0
        sleep 0.5
    done
    return 1
}

id=$(flux submit -N4 -n4 "${rc[@]}" sleep 600)
flux job wait-event "$id" start >/dev/null
ok "every rank's batch reaches rank 0 through the chain" \
    wait_for flux_usage_sampling_ranks 4
ok "rank 2 passes on rank 3's batches" wait_for_relay 2 batches_taken 3
ok "rank 1 passes on those of ranks 2 and 3 with its own" \
    wait_for_relay 1 batches_passed 9
diag "rank 1: $(flux exec -r 1 flux module stats prometheus | jq -c .relay)"

# Forty batches sent to rank 2 at once, as forty ranks below it would:
# they reach rank 0 in a few messages.
messages=$(value flux_usage_sample_messages_total)
batches=$(value flux_usage_sample_batches_total)
flux exec -r 2 flux python -c '
import flux
h = flux.Flux()
futures = [
    h.rpc("prometheus.samples",
          {"version": 1, "rank": 1000 + i, "hostname": "far%d" % i, "period": 2, "jobs": []},
          nodeid=2)
    for i in range(40)
]
for f in futures:
    f.get()
'
ok "forty batches from below reach rank 0" \
    wait_for_at_least flux_usage_sample_batches_total $((batches + 40))
more=$(( $(value flux_usage_sample_messages_total) - messages ))
ok "in $more messages, with the ranks' own" test "$more" -le 10
cpu=$(value flux_usage_sample_cpu_seconds_total)
ok "the CPU rank 0 took to take them is counted ($cpu s)" \
    awk -v cpu="$cpu" 'BEGIN { exit !(cpu > 0 && cpu < 5) }'

# Ranks 1 and 2 without the module: rank 3 sends to rank 0 directly.
flux exec -r 1,2 flux module remove prometheus
ok "without the modules of ranks 1 and 2, ranks 0 and 3 still count (after three periods)" \
    wait_for flux_usage_sampling_ranks 2
ok "rank 3 sends its bundles to rank 0 directly" wait_for_relay 3 bundles_direct 2
ok "and says so once in its log" \
    test "$(flux exec -r 3 flux dmesg | grep -c 'usage relay: the parent, rank 2, takes no samples')" -eq 1

# Rank 2's module back: within ten periods rank 3 tries its parent again.
flux exec -r 2 flux module load --name=prometheus "$MODULE_SO" sample-interval=2s
taken=$(relay 2 batches_taken)
ok "rank 3 sends to rank 2 again" wait_for_relay 2 batches_taken $((taken + 2))

# Bad input, sent to rank 3's relay: refused there, saying why; a bad
# batch in a good bundle reaches rank 0 and is refused alone.
send() {
    flux python -c '
import json, sys, flux
try:
    flux.Flux().rpc(sys.argv[1], json.loads(sys.argv[2]), nodeid=int(sys.argv[3])).get()
    print("taken")
except OSError as e:
    print(e.strerror)
' "$@"
}
is "$(send prometheus.samples '{"version":9,"bundle":[]}' 3)" \
    "bundle version 9; this flux-prometheus reads version 1 (shell plugin and module of different builds?)" \
    "a bundle of another build is refused, saying so"
is "$(send prometheus.samples '{"version":1,"bundle":{}}' 3 | cut -d: -f1)" "unreadable samples" \
    "a bundle that cannot be read is refused, saying so"
before=$(value flux_usage_samples_refused_total)
send prometheus.samples '{"version":1,"bundle":[{"version":1,"rank":7}]}' 3 >/dev/null
ok "a batch in a bundle that cannot be read is refused at rank 0 and counted" \
    wait_for flux_usage_samples_refused_total $((before + 1))

flux cancel "$id"
flux exec -r 0,2,3 flux module remove prometheus
done_testing
