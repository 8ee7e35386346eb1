#!/bin/bash
# What a new admin runs into first, on a real instance with two queues:
# - a quiet instance exports zero-valued job-flow and pending series for
#   every queue, every result and every pending status, before any job
#   moves, after a config reload that restarts the job-flow collector, and
#   for a queue added by flux config reload;
# - a job that runs is allocated in the same scrape (not a poll later);
# - flux prometheus targets works while ordinary jobs run.
. "$(dirname "$0")/lib.sh"
writable_config props.toml
run_inside_flux 4 --test-hosts=node[0-3] --config-path="${T_CONFDIR:-}"
trap 'rm -rf "$T_CONFDIR"' EXIT
[ -x "$REPO/target/release/flux-prometheus" ] || (cd "$REPO" && cargo build --release --quiet) >&2
export FLUX_EXEC_PATH_PREPEND=$REPO/target/release

plan 10

flux queue start --all >/dev/null 2>&1
# The default poll interval: the allocated counts must not wait for it.
flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0
url=$(module_url)

# Every zero-valued series the first scrapes must carry, for queue $1.
zero_series() {
    local q=$1 r s
    echo "flux_jobs_submitted_total{queue=\"$q\"} 0"
    echo "flux_jobs_started_total{queue=\"$q\"} 0"
    for r in canceled completed failed timeout; do
        echo "flux_jobs_finished_total{queue=\"$q\",result=\"$r\"} 0"
    done
    for s in blocked eligible held; do
        echo "flux_queue_pending_jobs{queue=\"$q\",status=\"$s\"} 0"
        echo "flux_queue_pending_requested_cores{queue=\"$q\",status=\"$s\"} 0"
    done
}
# Waits until every line of $1 is in a scrape; prints what is missing.
has_series() {
    local want=$1 got missing
    for _ in $(seq 50); do
        got=$(scrape "$url")
        missing=$(grep -vxF -f <(printf '%s\n' "$got") <<<"$want")
        [ -z "$missing" ] && return 0
        sleep 0.2
    done
    diag "missing: $(tr '\n' ';' <<<"$missing")"
    return 1
}

ok "quiet instance: zero-valued series for every queue, result and pending status" \
    has_series "$(zero_series batch; zero_series debug)"

# A reload that restarts the job-flow collector (its buckets change).
cat "$T_DIR/etc/props.toml" >"$T_CONFDIR/props.toml"
printf '\n[prometheus]\nwait-buckets = "1,10,100"\n' >>"$T_CONFDIR/props.toml"
flux config reload
ok "after a config reload restarts the job-flow collector: still there" \
    has_series "$(zero_series batch; zero_series debug)"
ok "the restart took effect (new wait buckets)" \
    bash -c "curl -sf '$url' | grep -q 'flux_jobs_queue_wait_seconds_bucket{queue=\"batch\",le=\"100\"} 0'"

# A queue added by flux config reload has its zeros too.
printf '\n[queues.extra]\nrequires = ["batch"]\n' >>"$T_CONFDIR/props.toml"
flux config reload
flux queue start extra >/dev/null 2>&1
ok "a queue added by flux config reload: zero-valued series at once" \
    has_series "$(zero_series extra)"

# Allocated in the same scrape as running: every scrape that counts running
# jobs also counts their cores as allocated. The resources poll is 5 s, so
# a module that waited for it would show running jobs on free cores.
consistent=0 inconsistent=0
for round in 1 2 3; do
    ids=$(flux submit --cc=1-3 -q batch sleep 30)
    for _ in $(seq 15); do
        s=$(scrape "$url")
        run=$(sample 'flux_jobs{state="run"}' <<<"$s")
        alloc=$(sample 'flux_resource_cores{state="allocated"}' <<<"$s")
        if [ "$run" != absent ] && [ "$run" -gt 0 ]; then
            if [ "$alloc" -ge "$run" ]; then
                consistent=$((consistent + 1))
            else
                inconsistent=$((inconsistent + 1))
                diag "round $round: flux_jobs{state=run} $run beside allocated cores $alloc"
            fi
        fi
        sleep 0.1
    done
    flux cancel $ids
    flux job wait-event -t 10 "$(tail -1 <<<"$ids")" clean >/dev/null
    # job-list counts the canceled jobs as running a little longer (it
    # batches its updates) while the journal has freed their cores: the next
    # round starts once job-list has caught up, so that its scrapes judge
    # the new jobs only.
    for _ in $(seq 50); do
        [ "$(scrape "$url" | sample 'flux_jobs{state="run"}')" = 0 ] && break
        sleep 0.1
    done
done
ok "a running job is allocated in the same scrape ($consistent scrapes checked)" \
    test "$inconsistent" = 0 -a "$consistent" -gt 10
ok "and freed again once it is gone" resources_agree ""

# The totals the overlapping state rows do not give: flux resource list -s all.
capacity_agrees() {
    local s want got
    for _ in $(seq 50); do
        s=$(scrape "$url")
        want=$(flux resource list -s all -no '{nnodes} {ncores} {ngpus}' | awk '{ n += $1; c += $2; g += $3 } END { print n + 0, c + 0, g + 0 }')
        got="$(sample flux_resource_capacity_nodes <<<"$s") $(sample flux_resource_capacity_cores <<<"$s") $(sample flux_resource_capacity_gpus <<<"$s")"
        [ "$want" = "$got" ] && return 0
        sleep 0.2
    done
    diag "scraped $got; flux resource list -s all: $want"
    return 1
}
ok "flux_resource_capacity_* equal flux resource list -s all" capacity_agrees

# flux prometheus targets while ordinary jobs run ({uri.local} used to fail).
flux submit -q batch sleep 60 >/dev/null
flux submit -q batch sleep 60 >/dev/null
out=$(flux prometheus targets 2>&1)
rc=$?
is "$rc" 0 "flux prometheus targets works while ordinary jobs run"
[ "$rc" = 0 ] || diag "$out"
is "$(jq length <<<"$out" 2>/dev/null)" 1 "and lists this instance (its jobs are no instances)"
ok "flux prometheus status says how long ago, not an epoch time" \
    bash -c 'flux prometheus status | grep -E "last update ([0-9]+[a-z]+ )*ago|last update just now" &&
             ! flux prometheus status | grep -qE "last update [0-9]{9}"'
flux cancel --all >/dev/null 2>&1
# Modules loaded by hand are not unloaded by rc3: the broker would cancel
# it at exit and report that it was not properly shut down.
flux module remove prometheus
done_testing
