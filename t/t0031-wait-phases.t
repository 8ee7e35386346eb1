#!/bin/bash
# The wait split (jobflow option wait-phases): the time each job spent in
# DEPEND, PRIORITY and SCHED, for jobs that started and for jobs canceled
# before they started, against the timestamps flux jobs gives them.
. "$(dirname "$0")/lib.sh"
run_inside_flux 1
plan 14

flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 wait-phases=true
url=$(module_url)
value() { value_at "$url" "$1"; }

ncores=$(flux resource list -no '{ncores}')
# One job holds every core for a few seconds: the jobs after it wait in
# SCHED, one waits in DEPEND on it, one is held, one waits for an hour.
blocker=$(flux submit -n "$ncores" sleep 4)
flux job wait-event -t 30 "$blocker" start >/dev/null
dependent=$(flux submit --dependency=afterany:"$blocker" true)
waiter=$(flux submit -n1 true)
held=$(flux submit --urgency=hold true)
doomed=$(flux submit -n1 sleep 100)
later=$(flux submit --begin-time=+1h true)
sleep 1
flux cancel "$doomed" "$later"
flux job urgency "$held" default
flux queue drain --timeout=60
for id in $blocker $dependent $waiter $held $doomed $later; do
    flux job wait-event -t 30 "$id" clean >/dev/null
done

# Each job's time in each state, from flux jobs: a state's time ends where
# the next begins, or at t_cleanup (the fatal exception) for a job that
# never ran.
phases_from_cli() {
    flux jobs -a -n -o '{t_depend} {t_priority} {t_sched} {t_run} {t_cleanup}' | awk -v ran="$1" '
        ($4 > 0) == ran {
            split($0, t, " ")
            for (i = 1; i <= 3; i++) {
                if (t[i] == 0) continue
                end = ran ? t[4] : t[5]
                for (j = i + 1; j <= 3; j++) if (t[j] > 0) { end = t[j]; break }
                n[i]++; s[i] += end - t[i]
            }
        }
        END { for (i = 1; i <= 3; i++) printf "%d %.3f\n", n[i], s[i] }'
}
close() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; exit !(d < 0.01 && d > -0.01) }'; }

ok "the four jobs that ran are counted in SCHED" \
    wait_for_value "$url" 'flux_jobs_wait_phase_seconds_count{phase="scheduler"}' 4
phase_names=(dependency priority scheduler)
check() {
    local family=$1 ran=$2 i=0 count sum
    while read -r count sum; do
        local phase=${phase_names[$i]}
        is "$(value "${family}_count{phase=\"$phase\"}")" "$count" "$family $phase: as many jobs as flux jobs shows"
        local got
        got=$(value "${family}_sum{phase=\"$phase\"}")
        ok "$family $phase: $got s in all, flux jobs $sum s" close "$got" "$sum"
        i=$((i + 1))
    done < <(phases_from_cli "$ran")
}
check flux_jobs_wait_phase_seconds 1
check flux_jobs_unstarted_wait_phase_seconds 0

flux module remove prometheus
flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0
url=$(module_url)
is "$(value 'flux_jobs_wait_phase_seconds_count{phase="scheduler"}')" absent \
    "without wait-phases the families are absent"
flux module remove prometheus
done_testing
