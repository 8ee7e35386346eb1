#!/bin/bash
# Why pending jobs wait (jobflow option pending-reasons): every pending job
# under one reason, against what flux jobs shows at the same instant; a
# stopped queue; the scheduler's start estimates, also after a reload; the
# scheduler's own reason; flux-accounting's limits where it is installed.
. "$(dirname "$0")/lib.sh"
run_inside_flux 1
plan 23

flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 poll-interval=0.3s pending-reasons=true
url=$(module_url)
value() { value_at "$url" "$1"; }

# "reason jobs" lines from flux jobs, by the module's rule (its metrics
# reference): held, a dependency (flux-accounting's limits by name,
# begin-time, any other), not yet prioritised, the queue stopped ($1 = 1),
# the scheduler's reason, resources.
reasons_from_cli() {
    flux jobs -n -o '{state}|{urgency}|{priority}|{dependencies}|{annotations.sched.reason_pending}' |
        awk -F'|' -v stopped="${1:-0}" '
        BEGIN {
            n = split("max-running-jobs-user-limit max-resources-user-limit max-sched-jobs-user-limit max-run-jobs-queue max-resources-queue max-sched-jobs-queue-limit max-sched-nodes-queue-limit max-sched-cores-queue-limit", l, " ")
            for (i = 1; i <= n; i++) limit[l[i]] = 1
        }
        $1 !~ /^(DEPEND|PRIORITY|SCHED)$/ { next }
        {
            if ($2 == "0" || $3 == "0") r = "held"
            else if ($4 != "") {
                r = ""; n = split($4, d, ",")
                for (i = 1; i <= n; i++) if (d[i] in limit) { r = d[i]; break }
                if (r == "") for (i = 1; i <= n; i++) if (d[i] ~ /^begin/) { r = "begin-time"; break }
                if (r == "") r = "dependency"
            }
            else if ($1 != "SCHED") r = "priority"
            else if (stopped) r = "queue-stopped"
            else if ($5 != "") r = $5
            else r = "resources"
            c[r]++
        }
        END { for (r in c) print r, c[r] }' | sort
}
# The same from a scrape (stdin), zeros left out. A reason may hold spaces.
reasons_from_scrape() {
    awk '/^flux_queue_pending_reason_jobs\{/ && $NF > 0 {
            match($0, /reason="[^"]*"/); print substr($0, RSTART + 8, RLENGTH - 9), $NF
        }' | sort
}
# The module and flux jobs agree at one instant: two scrapes around flux
# jobs read the same (job-list may trail the journal by a moment).
agree() {
    local a b c
    for _ in $(seq 60); do
        a=$(scrape "$url" | reasons_from_scrape)
        c=$(reasons_from_cli "${1:-0}")
        b=$(scrape "$url" | reasons_from_scrape)
        [ "$a" = "$b" ] && [ "$a" = "$c" ] && return 0
        sleep 0.25
    done
    diag "module: $(echo $a)"
    diag "flux jobs: $(echo $c)"
    return 1
}
reason() { value "flux_queue_pending_reason_jobs{reason=\"$1\"}"; }

ncores=$(flux resource list -no '{ncores}')
# One job holds every core; behind it one job is held, one waits on it,
# one waits for an hour, two wait for cores.
blocker=$(flux submit -n "$ncores" -t 10m sleep 600)
flux job wait-event -t 30 "$blocker" start >/dev/null
flux submit --urgency=hold true >/dev/null
flux submit --dependency=afterok:"$blocker" true >/dev/null
flux submit --begin-time=+1h true >/dev/null
flux submit -n1 true >/dev/null
flux submit -n1 true >/dev/null

ok "each pending job's reason is what flux jobs shows" agree
is "$(reason held) $(reason dependency) $(reason begin-time) $(reason priority) $(reason resources)" \
    "1 1 1 0 2" "held 1, dependency 1, begin-time 1, priority 0, resources 2"
sum_reasons=$(scrape "$url" | awk '/^flux_queue_pending_reason_jobs\{/ { s += $NF } END { print s }')
is "$sum_reasons" "$(flux jobs -n --filter=pending | wc -l)" "the reasons add up to the pending jobs flux jobs lists"
sum_status=$(scrape "$url" | awk '/^flux_queue_pending_jobs\{/ { s += $NF } END { print s }')
is "$sum_reasons" "$sum_status" "the reasons add up to flux_queue_pending_jobs"

# A stopped queue holds what would wait on the scheduler, nothing else.
flux queue stop >/dev/null
ok "a stopped queue: its two waiting jobs wait on it" \
    wait_for_value "$url" 'flux_queue_pending_reason_jobs{reason="queue-stopped"}' 2
ok "a stopped queue: the reasons agree with flux jobs" agree 1
is "$(reason resources) $(reason held)" "0 1" "a stopped queue: resources 0, held still 1"
flux queue start >/dev/null
ok "a started queue: none wait on it" \
    wait_for_value "$url" 'flux_queue_pending_reason_jobs{reason="queue-stopped"}' 0

# Start estimates: as many jobs and the same earliest time as flux jobs
# shows (none: the series are absent).
estimates_from_cli() {
    flux jobs -n --filter=pending -o '{annotations.sched.t_estimate}' |
        awk 'NF { n++; if (min == "" || $1 < min) min = $1 } END { if (n) printf "%d %.3f\n", n, min; else print "absent absent" }'
}
estimates_from_scrape() {
    scrape "$url" | awk '
        $1 == "flux_queue_pending_estimated_jobs" { n = $2 }
        $1 == "flux_queue_pending_next_start_estimate_timestamp_seconds" { t = $2 }
        END { if (n != "") printf "%d %.3f\n", n, t; else print "absent absent" }'
}
estimates_agree() {
    local a b c
    for _ in $(seq 60); do
        a=$(estimates_from_scrape)
        c=$(estimates_from_cli)
        b=$(estimates_from_scrape)
        [ "$a" = "$b" ] && [ "$a" = "$c" ] && return 0
        sleep 0.25
    done
    diag "module: $a; flux jobs: $c"
    return 1
}
ok "start estimates: as many jobs, the same earliest start as flux jobs ($(estimates_from_cli))" estimates_agree


# Fluxion estimates starts with a backfilling queue policy (its default,
# fcfs, gives none); flux-core's schedulers estimate the first job's.
sched=$(sched_name)
if [ "$sched" = sched-fluxion-qmanager ]; then
    printf '[sched-fluxion-qmanager]\nqueue-policy = "easy"\n' | flux config load
    flux module reload sched-fluxion-qmanager
    flux submit -n1 -t 1m true >/dev/null
fi
ok "$sched: start estimates agree with flux jobs ($(estimates_from_cli))" estimates_agree
ok "$sched: a pending job has an estimate" test "$(value flux_queue_pending_estimated_jobs)" -ge 1

# A reload: the backlog carries no annotations; job-list gives them
# (the scheduler annotated them once, before the reload).
flux module remove prometheus
flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 poll-interval=0.3s pending-reasons=true
url=$(module_url)
ok "after a reload: the reasons agree with flux jobs" agree
ok "after a reload: the start estimates agree with flux jobs" estimates_agree

# The scheduler's own reason: flux-core's sched-simple gives one with a
# debug bit set; no other scheduler here gives one.
if [ "$sched" = sched-simple ] && flux module debug --setbit 2 sched-simple >/dev/null; then
    flux submit -n1 true >/dev/null
    flux jobs -n -o '{annotations.sched.reason_pending}' | grep -q . ||
        sleep 1
    ok "the scheduler's reason is the job's reason, as flux jobs shows it" agree
    is "$(reason resources)" 0 "jobs with the scheduler's reason are not counted under resources"
    flux module debug --clearbit 2 sched-simple >/dev/null
else
    for what in "the scheduler's reason" "not under resources"; do
        skip "$what" "the scheduler ($sched) gives no sched.reason_pending"
    done
fi

# Bad input: none of it fails the collector.
is "$(value 'flux_prometheus_collector_up{collector="jobflow"}')" 1 "the jobflow collector is up"

flux cancel --all >/dev/null 2>&1
flux queue drain --timeout=60
none_pending() {
    for _ in $(seq 60); do
        [ "$(scrape "$url" | awk '/^flux_queue_pending_reason_jobs\{/ { s += $NF } END { print s }')" = 0 ] && return 0
        sleep 0.25
    done
    return 1
}
ok "no pending job: every reason is 0" none_pending

# flux-accounting (mf_priority.so): a job waits for its priority until the
# plugin has its user's data, then for its bank's running-jobs limit.
if flux account --help >/dev/null 2>&1 && flux jobtap load -r .priority-default mf_priority.so 2>/dev/null; then
    db=$(mktemp -d)/accounting.db
    flux account -p "$db" create-db
    flux account-service -p "$db" -t
    early=$(flux submit -n1 true)
    ok "a job the plugin cannot prioritise yet waits on priority" \
        wait_for_value "$url" 'flux_queue_pending_reason_jobs{reason="priority"}' 1
    ok "flux-accounting: priority agrees with flux jobs" agree
    flux account add-bank root 1
    flux account add-bank --parent-bank=root limited 1
    flux account add-user --username="$(id -un)" --userid="$(id -u)" --bank=limited --max-running-jobs=1
    flux account-priority-update -p "$db"
    flux job wait-event -t 30 "$early" clean >/dev/null
    running=$(flux submit --setattr=system.bank=limited -n1 sleep 600)
    flux job wait-event -t 30 "$running" start >/dev/null
    flux submit --setattr=system.bank=limited -n1 true >/dev/null
    ok "a job over its bank's running-jobs limit waits on max-running-jobs-user-limit" \
        wait_for_value "$url" 'flux_queue_pending_reason_jobs{reason="max-running-jobs-user-limit"}' 1
    ok "flux-accounting: the limit agrees with flux jobs" agree
    flux cancel --all >/dev/null 2>&1
    flux queue drain --timeout=60
    flux jobtap remove mf_priority.so
    flux jobtap load .priority-default 2>/dev/null || true
else
    for what in "priority" "priority agrees" "the limit" "the limit agrees"; do
        skip "flux-accounting: $what" "flux-accounting is not installed (flux account, mf_priority.so)"
    done
fi

flux module remove prometheus
flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0
url=$(module_url)
is "$(reason held)" absent "without pending-reasons the families are absent"
is "$(value flux_queue_pending_estimated_jobs)" absent "without pending-reasons no estimate is exported"
flux module remove prometheus
done_testing
