#!/bin/bash
# Job counts scraped from the module agree with `flux jobs --stats-only`,
# for the instance and per queue, as jobs move and job-list comes and goes.
. "$(dirname "$0")/lib.sh"
run_inside_flux 2 --config-path="$(dirname "$0")/etc/queues.toml"

plan 12

flux queue start --all >/dev/null 2>&1
flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 poll-interval=1s
url=$(module_url)

check_all() {
    local when=$1 out
    out=$(agree_with_cli "$url"); ok "$when: instance counts equal flux jobs --stats-only -a ($out)" test $? -eq 0
    out=$(agree_with_cli "$url" batch); ok "$when: batch counts equal flux jobs --stats-only -a -q batch ($out)" test $? -eq 0
    out=$(agree_with_cli "$url" debug); ok "$when: debug counts equal flux jobs --stats-only -a -q debug ($out)" test $? -eq 0
}

check_all "empty instance"

# The mix: completed, failed, canceled, timeout, running, held, dependent,
# pending behind an unsatisfiable request, and one in the debug queue.
flux submit --wait true >/dev/null
flux submit --wait false >/dev/null 2>&1
victim=$(flux submit sleep 300)
flux job wait-event $victim start
flux cancel $victim
flux submit --wait -t 1s sleep 30 >/dev/null 2>&1
long=$(flux submit -N2 -n2 sleep 300)
held=$(flux submit --urgency=0 true)
dependent=$(flux submit --dependency=afterok:$long true)
held_debug=$(flux submit -q debug --urgency=0 true)
flux job wait-event $long start
check_all "job mix"

s=$(scrape "$url")
is "$(sample 'flux_jobs_inactive{result="failed"}' <<<"$s")" 1 "failed counts only the plain failure"
is "$(sample 'flux_jobs_inactive{result="canceled"}' <<<"$s")" 1 "canceled is its own result"
is "$(sample 'flux_jobs_inactive{result="timeout"}' <<<"$s")" 1 "timeout is its own result"

# job-list removed: the collector says so, the module stays up.
flux module remove job-list
ok "without job-list the collector reports down and job series vanish" bash -c '
    for i in $(seq 50); do
        s=$(curl -sf "'"$url"'")
        grep -q "^flux_prometheus_collector_up{collector=\"jobs\"} 0" <<<"$s" && ! grep -q "^flux_jobs{" <<<"$s" && exit 0
        sleep 0.2
    done; exit 1'
flux module load job-list
flux submit --wait true >/dev/null
out=$(agree_with_cli "$url" "" 100); ok "after job-list is loaded again, counts agree ($out)" test $? -eq 0

# job-list reloaded: its old stream dies silently; the watchdog notices.
flux module reload job-list
flux submit --wait true >/dev/null
out=$(agree_with_cli "$url" "" 100); ok "after flux module reload job-list, counts agree ($out)" test $? -eq 0

# By ID: a reloaded job-list forgets running jobs, so --all would miss them.
flux cancel $long $held $dependent $held_debug >/dev/null 2>&1
flux module remove prometheus
done_testing
