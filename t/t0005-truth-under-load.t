#!/bin/bash
# Truth under load: while a background loop keeps the instance busy
# (hundreds of short simulated jobs in two queues, cancels, a node drained
# and undrained, a queue stopped and started), every exported job, queue and
# resource number is compared again and again with what the flux command line
# prints, each time between two scrapes that agree with each other. The run
# is made three times: undisturbed, with job-list reloaded mid-run, and with
# resource reloaded mid-run. Then queues are added and removed by
# `flux config reload`.
. "$(dirname "$0")/lib.sh"
writable_config props.toml
run_inside_flux 4 --test-hosts=node[0-3] --config-path="${T_CONFDIR:-}"
trap 'rm -rf "$T_CONFDIR"' EXIT

ROUNDS=4
MIN_JOBS=300
plan $((3 * 3 + 4))

flux queue start --all >/dev/null 2>&1
# Under churn the module renders at most once per busy-publish-interval
# (1 s by default), so a scrape may be that much behind flux jobs. A
# comparison needs the counts to hold still from one scrape to the next;
# under sched-backfill, which keeps starting jobs all through the load, they
# seldom hold still for a second. The counts, not that throttle, are under
# test here: renders follow each change within 0.1 s.
flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 poll-interval=0.2s \
    busy-publish-interval=0.1s
url=$(module_url)
export AGREE_TRIES=100

STOP=$(mktemp -u)
SUBMITTED=$(mktemp)
# One cycle a second or so: 24 short jobs and 4 long ones that get canceled,
# alternating queues; every third cycle drains (then undrains) a node, every
# fourth stops (then starts) the debug queue.
load() {
    local cycle=0 q ids
    while [ ! -e "$STOP" ]; do
        cycle=$((cycle + 1))
        q=$([ $((cycle % 2)) = 0 ] && echo batch || echo debug)
        flux submit --quiet --cc=1-24 -q $q \
            --setattr=system.exec.test.run_duration=0.$((RANDOM % 4 + 1))s true 2>/dev/null &&
            echo 24 >>"$SUBMITTED"
        ids=$(flux submit --cc=1-4 -q $q --setattr=system.exec.test.run_duration=60s true 2>/dev/null) &&
            echo 4 >>"$SUBMITTED"
        sleep 0.3
        [ -n "$ids" ] && flux cancel $ids 2>/dev/null
        case $((cycle % 3)) in
        0) flux resource drain 2 "load test" 2>/dev/null ;;
        1) flux resource undrain 2 2>/dev/null ;;
        esac
        case $((cycle % 4)) in
        0) flux queue stop debug >/dev/null 2>&1 ;;
        2) flux queue start debug >/dev/null 2>&1 ;;
        esac
        sleep 0.5
    done
    flux resource undrain 2 2>/dev/null
    flux queue start debug >/dev/null 2>&1
}

# One pass over every comparison; prints the ones that never agreed, each
# with what was scraped and what flux printed on the last try.
compare_all() {
    local q out
    for q in "" batch debug; do
        out=$(agree_with_cli "$url" "$q" "$AGREE_TRIES") || echo "jobs${q:+ -q $q} [$out] "
        out=$(resources_agree "$q") || echo "resources${q:+ -q $q} [${out#\# }] "
    done
    out=$(status_agrees) || echo "resource status [${out#\# }] "
    out=$(queues_agree) || echo "queue list [${out#\# }] "
}

submitted() { awk '{ n += $1 } END { print n + 0 }' "$SUBMITTED"; }

# Runs the load for ROUNDS passes of compare_all (more if fewer than
# MIN_JOBS jobs were submitted by then), calling $2 (if any) after
# the first; then lets the instance settle and compares once more.
phase() {
    local name=$1 disturb=${2:-} round misses="" before after
    rm -f "$STOP"
    before=$(submitted)
    load &
    local loader=$!
    round=0
    while [ $round -lt $ROUNDS ] || [ $(($(submitted) - before)) -lt $MIN_JOBS ]; do
        round=$((round + 1))
        misses+=$(compare_all)
        [ "$round" = 1 ] && [ -n "$disturb" ] && $disturb
        [ $round -ge 40 ] && break
    done
    touch "$STOP"
    wait $loader
    after=$(submitted)
    flux queue drain --timeout=120 >/dev/null 2>&1 || flux cancel --all --quiet
    ok "$name: every comparison agreed during the load ($((after - before)) jobs submitted${misses:+; never agreed: $misses})" \
        test -z "$misses"
    ok "$name: load was hundreds of jobs" test $((after - before)) -ge $MIN_JOBS
    misses=$(compare_all)
    ok "$name: everything agrees once the instance settles${misses:+ (not: $misses)}" test -z "$misses"
}

reload_job_list() {
    diag "reloading job-list"
    flux module reload job-list
}
# The scheduler exits when the resource module goes away, so it is reloaded
# around it, as flux-core's own tests do.
reload_resource() {
    diag "reloading resource (and $(sched_name) around it)"
    sched_remove &&
        flux module reload resource &&
        sched_load
}

phase "undisturbed"
phase "job-list reloaded mid-run" reload_job_list
phase "resource reloaded mid-run" reload_resource

# Queues added and removed by flux config reload appear and disappear.
cat >>"$T_CONFDIR/props.toml" <<'EOF'

[queues.extra]
requires = ["batch"]
EOF
flux config reload
flux queue start extra >/dev/null 2>&1
ok "a queue added by flux config reload shows in flux_queue_enabled/started" queues_agree
ok "and in the per-queue resource rows" resources_agree extra
sed -i '/^\[queues.extra\]/,$d' "$T_CONFDIR/props.toml"
flux config reload
ok "a queue removed by flux config reload disappears" queues_agree
s=$(scrape "$url")
ok "and its resource rows disappear" test -z "$(grep 'queue="extra"' <<<"$s" | grep resource)"

flux module remove prometheus
done_testing
