#!/bin/bash
# What each job used: the prometheus job-shell plugin, loaded by real job
# shells on 4 brokers, appends one prometheus.usage event to each job's
# exec eventlog. Its CPU seconds per node equal what getrusage says of the
# same processes (/usr/bin/time, within 2 %), its peak memory what the
# largest process held (within 5 %); children that exit early count, a
# canceled job still gets its record, a module reload mid-job changes
# nothing, the module counts each record in its series (and refuses one
# for a job that is not active), a job that opts out gets none, and flux
# prometheus jobstats reports it.
. "$(dirname "$0")/lib.sh"
run_inside_flux 4

if [ ! -x /usr/bin/time ]; then
    echo "1..0 # SKIP /usr/bin/time is not installed (Debian package time)"
    exit 0
fi
export FLUX_EXEC_PATH_PREPEND=$REPO/target/release
plan 21

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# Jobs load the plugin as a site's would from the plugin path.
shell_plugin_rc "$dir/rc.lua"
rc=(-o userrc="$dir/rc.lua" -o prometheus.period=0.5)

# The event's context, as JSON (empty where the job has none).
usage_of() { flux job eventlog -f json -p exec "$1" | jq -c 'select(.name == "prometheus.usage") | .context'; }
# A fixed amount of work, about two seconds of CPU: the same however busy
# the machine is.
SPIN="awk 'BEGIN { for (i = 0; i < 1e8; i++) s += i }'"

# Two nodes, one task each, each timed by getrusage (/usr/bin/time) and
# holding 100 MB at its peak.
id=$(flux submit -N2 -n2 "${rc[@]}" --output="$dir/out.{{taskid}}" /usr/bin/time -f "%U %S %M" \
    bash -c "$SPIN; python3 -c 'b = bytearray(100 << 20); import time; time.sleep(1)'")
flux job wait-event "$id" clean >/dev/null
u=$(usage_of "$id")
is "$(jq '.nodes | length' <<<"$u")" 2 "the event has one record per node"
is "$(jq -r '[.nodes[].rank] | sort | if .[1] == .[0] + 1 then "\(.[0])-\(.[1])" else "\(.[0]),\(.[1])" end' <<<"$u")" \
    "$(flux jobs -no '{ranks}' "$id" | tr -d '[]')" "each names its broker rank, as flux jobs does"
is "$(jq -c '[.nodes[].cores]' <<<"$u")" "[1,1]" "and the cores it was allocated"
# time's line is the last of each task's output.
cpu_ok=1 mem_ok=1 detail=""
for t in 0 1; do
    read -r tu ts tm < <(tail -1 "$dir/out.$t")
    # Task t runs in shell rank t, whose record is the t-th.
    got=$(jq ".nodes[$t] | .user_seconds + .system_seconds" <<<"$u")
    want=$(awk -v u="$tu" -v s="$ts" 'BEGIN { print u + s }')
    awk -v g="$got" -v w="$want" 'BEGIN { exit !(g >= w * 0.98 && g <= w * 1.02 + 0.02) }' || cpu_ok=0
    gotm=$(jq ".nodes[$t].peak_memory_bytes" <<<"$u")
    awk -v g="$gotm" -v w="$((tm * 1024))" 'BEGIN { exit !(g >= w * 0.95 && g <= w * 1.05) }' || mem_ok=0
    detail+="node $t: CPU $got s (getrusage $want), peak $gotm B (getrusage $((tm * 1024))); "
done
ok "CPU seconds per node equal getrusage's within 2 % (${detail%; })" test "$cpu_ok" = 1
ok "peak memory per node equals the largest process's within 5 %" test "$mem_ok" = 1
is "$(jq -c '.missing' <<<"$u")" "[]" "no shell is missing"
# One core of this machine's (the test brokers share it): its share of the
# memory.
share=$(awk -v cpus="$(cat /sys/devices/system/cpu/online)" '
    BEGIN { n = 0; k = split(cpus, parts, ","); for (i = 1; i <= k; i++) { if (split(parts[i], r, "-") == 2) n += r[2] - r[1] + 1; else n++ } }
    $1 == "MemTotal:" { printf "%.0f\n", int($2 * 1024 / n) }' /proc/meminfo)
is "$(jq -c '[.nodes[].memory_share_bytes]' <<<"$u")" "[$share,$share]"     "each node's memory share is the node's memory in proportion to its cores"
ok "memory held over time is counted, at most the peak for the whole run"     jq -e 'all(.nodes[]; .memory_byte_seconds > 0 and .memory_byte_seconds <= .peak_memory_bytes * .wall_seconds)' <<<"$u"

# Children that exit early, in one task: their CPU counts too (twice the
# work of one). The child's own CPU time, measured in the job beside the
# parent's equal work, is what "one" costs: a measure taken before the job
# can differ by a third on a shared machine.
id=$(flux submit -N1 -n1 "${rc[@]}" --output="$dir/fork.out" /usr/bin/time -f "%U %S %M" \
    bash -c "(/usr/bin/time -f 'child %U %S' $SPIN) & $SPIN; wait")
flux job wait-event "$id" clean >/dev/null
read -r tu ts _ < <(tail -1 "$dir/fork.out")
want=$(awk -v u="$tu" -v s="$ts" 'BEGIN { print u + s }')
one=$(awk '$1 == "child" { print $2 + $3 }' "$dir/fork.out")
got=$(usage_of "$id" | jq '.nodes[0] | .user_seconds + .system_seconds')
ok "a child that exits early is counted (CPU $got s, getrusage $want s, the child alone $one s)" \
    awk -v g="$got" -v w="$want" -v one="$one" 'BEGIN { exit !(one > 0 && g >= w * 0.98 && g <= w * 1.02 + 0.02 && g > 1.6 * one) }'

# A job canceled while it runs still gets its record.
id=$(flux submit -N2 -n2 "${rc[@]}" sleep 60)
flux job wait-event "$id" start >/dev/null
sleep 1
flux cancel "$id"
flux job wait-event -t 60 "$id" clean >/dev/null
is "$(usage_of "$id" | jq '.nodes | length')" 2 "a canceled job still gets its record"

# The module reloaded while a job runs changes nothing, and counts the
# job's record in its series.
flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 publish-interval=0.01s
id=$(flux submit -N1 -n1 "${rc[@]}" bash -c "$SPIN")
flux job wait-event "$id" start >/dev/null
flux module reload --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 publish-interval=0.01s
url=$(module_url)
flux job wait-event "$id" clean >/dev/null
u=$(usage_of "$id")
is "$(jq '.nodes | length' <<<"$u")" 1 "a module reload mid-job changes nothing"
for _ in $(seq 30); do
    s=$(scrape "$url")
    [ "$(sample flux_jobs_usage_records_total <<<"$s")" = 1 ] && break
    sleep 0.1
done
is "$(sample flux_jobs_usage_records_total <<<"$s")" 1 "the module counts the job's record"
want=$(jq '[.nodes[] | .user_seconds + .system_seconds] | add' <<<"$u")
ok "its CPU seconds are the record's ($want)" \
    awk -v g="$(sample flux_jobs_cpu_seconds_total <<<"$s")" -v w="$want" 'BEGIN { exit !(g - w < 1e-6 && w - g < 1e-6) }'
is "$(sample flux_jobs_cpu_efficiency_ratio_count <<<"$s")" 1 "and its efficiency is observed once"
is "$(sample flux_jobs_memory_share_peak_ratio_count <<<"$s")" 1 "and its peak memory against its share"
# A record for a job that is not active is refused, and counted.
out=$(flux python -c 'import flux, sys
try:
    flux.Flux().rpc("prometheus.usage", {"id": 1, "usage": {"version": 1, "nodes": []}}).get()
except OSError as e:
    print(e.strerror)' 2>&1)
ok "a record for a job that is not active is refused ($out)" grep -q "not an active job" <<<"$out"
# (within busy-publish-interval, 1 s)
for _ in $(seq 30); do
    refused=$(scrape "$url" | sample flux_jobs_usage_refused_total)
    [ "$refused" = 1 ] && break
    sleep 0.1
done
is "$refused" 1 "and counted in flux_jobs_usage_refused_total"
flux module remove prometheus

# Opting out.
id=$(flux submit -N1 -n1 "${rc[@]}" -o prometheus.usage=false true)
flux job wait-event "$id" clean >/dev/null
is "$(usage_of "$id")" "" "a job that opts out gets no record"
# A bad option: the job runs, with one warning.
id=$(flux submit -N1 -n1 "${rc[@]}" -o prometheus.period=fast true)
flux job wait-event "$id" clean >/dev/null
ok "a bad option costs the record only, with a warning naming it" bash -c '
    [ "$(flux job eventlog '"$id"' | grep -c "finish status=0")" = 1 ] &&
    flux job attach '"$id"' 2>&1 | grep -q "period must be a number of seconds"'

# flux prometheus jobstats, for a person and for a script.
id=$(flux submit -N2 -n2 "${rc[@]}" bash -c "$SPIN")
flux job wait-event "$id" clean >/dev/null
report=$(flux prometheus jobstats "$id")
ok "flux prometheus jobstats reports each node and the total" bash -c '
    grep -q "^  Total: 2 node(s), 2 cores, CPU" <<<"$1" && [ "$(grep -c " processes$" <<<"$1")" = 2 ]' _ "$report"
[ "$FAILED" = 0 ] || diag "$report"
is "$(flux prometheus jobstats --json "$id" | jq '.nodes | length')" 2 "and --json gives the same record"
done_testing
