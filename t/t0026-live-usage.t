#!/bin/bash
# What running jobs use now: the module on every broker rank samples the
# jobs whose shells registered with it (the prometheus shell plugin) and
# makes one batch per period for rank 0 (t0037 follows them up the tree). Ranks other than 0 open no port; rank
# 0 shows the CPU a job burns while it runs, per queue and (opted in) per
# job; flux prometheus jobstats reports a running job node by node; a job
# that ends leaves the series; a rank whose module goes away stops only its
# own node's samples, until a module is loaded there again and the shell
# renews its registration; registrations and batches that are wrong are
# refused with a message that says why.
. "$(dirname "$0")/lib.sh"
run_inside_flux 4

export FLUX_EXEC_PATH_PREPEND=$REPO/target/release
plan 22

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
shell_plugin_rc "$dir/rc.lua"
rc=(-o userrc="$dir/rc.lua")

flux exec -r all flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 \
    sample-interval=1s job-usage-series=5
url=$(module_url)

ports=$(for r in 1 2 3; do flux exec -r $r flux module stats prometheus | jq -r '.url // "none"'; done | sort | uniq -c | awk '{ print $1, $2 }')
is "$ports" "3 none" "ranks 1-3 open no port"
is "$(flux exec -r 2 flux module stats prometheus | jq -c '[.sampler.rank, .sampler.sample_interval]')" "[2,1]" \
    "flux module stats on a rank shows its sampler"

value() { value_at "$url" "$1"; }
wait_for() { wait_for_value "$url" "$1" "$2"; }

# Two nodes, one task each, each burning a whole core. The test brokers
# share this machine's cores, so tasks are not bound to theirs (two nodes'
# core 0 would be the same core).
# The shells sample every half second, and so renew their registration
# every three seconds.
id=$(flux submit -N2 -n2 "${rc[@]}" -o prometheus.period=0.5 -o cpu-affinity=off \
    awk 'BEGIN { for (;;) s++ }')
flux job wait-event "$id" start >/dev/null
f58=$(flux job id --to=f58 "$id")
ok "the job shows as sampled once both nodes have looked twice" \
    wait_for 'flux_jobs_running_allocated_cores' 2
is "$(value flux_jobs_running_sampled)" 1 "one running job is sampled"
is "$(value flux_usage_sampling_ranks)" 2 "two ranks send batches"
cores=$(value flux_jobs_running_cpu_cores)
# Each task burns a core, less what a busy 2-core test machine takes.
ok "its tasks use about two cores' worth of CPU now ($cores)" \
    awk -v c="$cores" 'BEGIN { exit !(c >= 1.2 && c <= 2.1) }'
ok "its resident memory is counted" awk -v m="$(value flux_jobs_running_memory_bytes)" 'BEGIN { exit !(m > 0) }'
ok "job-usage-series gives it series of its own" \
    test "$(value "flux_job_allocated_cores{jobid=\"$f58\"}")" = 2

out=$(flux prometheus jobstats "$id")
diag "$out"
ok "jobstats reports the running job node by node" \
    grep -q "Total: 2 node(s) reporting, 2 cores" <<<"$out"
json=$(flux prometheus jobstats --json "$id")
is "$(jq -r '[.nodes[].rank] | sort | if .[1] == .[0] + 1 then "\(.[0])-\(.[1])" else "\(.[0]),\(.[1])" end' <<<"$json")" \
    "$(flux jobs -no '{ranks}' "$id" | tr -d '[]')" "and names the ranks flux jobs names"

# A rank whose module goes away: only its node's samples stop.
last=$(jq '[.nodes[].rank] | max' <<<"$json")
flux exec -r "$last" flux module remove prometheus
ok "without rank $last's module, its node stops counting (after three periods)" \
    wait_for flux_usage_sampling_ranks 1
is "$(value flux_jobs_running_sampled)" 1 "and the job is still sampled on its other node"
flux exec -r "$last" flux module load --name=prometheus "$MODULE_SO" sample-interval=1s
ok "once a module is loaded there again, the node counts again" \
    wait_for flux_usage_sampling_ranks 2
first=$(jq '[.nodes[].rank] | min' <<<"$json")
renewals=$(flux exec -r "$first" flux module stats prometheus | jq .sampler.renewals)
ok "for the shell renews its registration ($renewals renewals on rank $first)" \
    test "$renewals" -gt 0

flux cancel "$id"
flux job wait-event -t 60 "$id" clean >/dev/null
ok "a job that has ended leaves the series" wait_for flux_jobs_running_sampled 0
ok "its usage record reaches rank 0 from a leader shell on rank $(jq '[.nodes[].rank] | min' <<<"$json")" \
    wait_for flux_jobs_usage_records_total 1

# Bad input, each refused with a message that names it.
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
is "$(send prometheus.register '{"version":9,"id":1,"pids":[1],"cores":1,"gpus":0}' 1)" \
    "registration version 9; this flux-prometheus reads version 1 (shell plugin and module of different builds?)" \
    "a registration of another build is refused, saying so"
is "$(send prometheus.register '{"version":1,"id":1,"pids":[2147483647],"cores":1,"gpus":0}' 1)" \
    "task 2147483647 of job 1 is not running on this node" \
    "a registration of tasks that do not run here is refused"
is "$(send prometheus.job-gpus '{"id":12345}' 1)" "job 12345 has no GPU figures on this node" \
    "a question about GPUs of a job the node does not know is answered so"
before=$(value flux_usage_samples_refused_total)
send prometheus.samples '{"version":1,"rank":3,"hostname":"x","period":1,"jobs":[[12345,0,1,0,1,1,null,1,1,"processes"]]}' 0 >/dev/null
ok "a sample of a job that is not active is refused and counted" \
    wait_for flux_usage_samples_refused_total $((before + 1))
send prometheus.samples '{"version":1,"rank":3,"hostname":"x","period":1e300,"jobs":[]}' 0 >/dev/null
ok "a batch whose period no module has is refused and counted" \
    wait_for flux_usage_samples_refused_total $((before + 2))
ok "and the log says why" \
    sh -c "flux dmesg | grep -q 'batch of rank 3: period 1e300 is not a number of seconds between 0 and 86400'"

flux exec -r all flux module remove prometheus
done_testing
