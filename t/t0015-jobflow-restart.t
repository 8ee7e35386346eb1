#!/bin/bash
# The job-manager restarted under the module (as flux-core's own tests do
# it: job-list removed, job-manager reloaded, the scheduler and job-exec
# reloaded, job-list loaded): the job-flow collector subscribes again, the
# backlog it is sent (inactive jobs included) counts nothing twice, what
# happens afterwards is counted, and the allocated set rebuilt from the new
# backlog still equals flux resource list.
. "$(dirname "$0")/lib.sh"
run_inside_flux 1

plan 10

flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 poll-interval=0.5s
url=$(module_url)
# Value of sample $1 once it equals $2 (waiting up to 20 s), else its last value.
value_until() {
    local v
    for _ in $(seq 100); do
        v=$(scrape "$url" | sample "$1")
        [ "$v" = "$2" ] && break
        sleep 0.2
    done
    echo "$v"
}

flux submit --cc=1-5 --wait --quiet true
flux submit --wait --quiet false || true
is "$(value_until 'flux_jobs_finished_total{result="completed"}' 5)" 5 "before the restart: 5 completed"
flux queue stop >/dev/null
pending=$(flux submit sleep 0.5)
is "$(value_until 'flux_queue_pending_jobs{status="eligible"}' 1)" 1 "a job pending in a stopped queue"

flux module remove job-list
sched_remove
flux module reload job-manager
sched_load
flux module reload -f job-exec
flux module load job-list

healthy_again() {
    for _ in $(seq 100); do
        flux module stats prometheus | jq -e '.collectors.jobflow.healthy' >/dev/null && return 0
        sleep 0.2
    done
    flux module stats prometheus | jq -c .collectors.jobflow | sed 's/^/# /'
    return 1
}
ok "the end of the journal stream was noticed ($(flux dmesg | grep -o 'jobflow collector: .*' | head -1 | cut -c1-80))" \
    bash -c "flux dmesg | grep -q 'jobflow collector: '"
ok "the job-flow collector is subscribed again" healthy_again
is "$(value_until 'flux_jobs_finished_total{result="completed"}' 5)" 5 "the replayed backlog counts no job twice"
is "$(scrape "$url" | sample 'flux_queue_pending_jobs{status="eligible"}')" 1 "the pending job is still known as pending"
flux queue start >/dev/null
flux job wait-event "$pending" clean >/dev/null
flux submit --cc=1-3 --wait --quiet true
is "$(value_until 'flux_jobs_finished_total{result="completed"}' 9)" 9 "jobs after the restart are counted (5 + the pending one + 3)"
is "$(scrape "$url" | sample flux_jobs_submitted_total)" 10 "submitted: every job once"
running=$(flux submit -n2 sleep 300)
flux job wait-event "$running" start >/dev/null
source_is() {
    for _ in $(seq 60); do
        [ "$(flux module stats prometheus | jq -r .collectors.resources.source)" = job-manager.events-journal ] && return 0
        sleep 0.2
    done
    return 1
}
ok "the allocated set comes from the new journal stream" source_is
ok "and rows equal flux resource list" resources_agree ""
flux cancel "$running"
flux module remove prometheus
done_testing
