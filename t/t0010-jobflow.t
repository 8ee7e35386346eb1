#!/bin/bash
# Job-flow metrics from the job-manager journal, on a real instance with a
# known mix of jobs (completed, failed, canceled, timeout, held, dependent,
# multi-node, GPU), checked number by number against flux jobs. A job that
# finished before the module loaded is not counted.
. "$(dirname "$0")/lib.sh"
run_inside_flux 4 --test-hosts=node[0-3] --config-path="$(dirname "$0")/etc/props.toml"

plan 17
T_RC=$(mktemp)
trap 'rm -f "$T_RC"' EXIT

flux queue start --all >/dev/null 2>&1
before=$(flux submit --wait true)
# The opt-in series too (per-job usage, the wait split, the pending
# reasons), whose families the kit's files use and the parsers below read.
flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 poll-interval=0.5s \
    sample-interval=0.5s job-usage-series=5 wait-phases=true pending-reasons=true
url=$(module_url)

flux submit --wait true >/dev/null
flux submit --wait false >/dev/null 2>&1
victim=$(flux submit sleep 300); flux job wait-event $victim start; flux cancel $victim
flux submit --wait -t 1s sleep 30 >/dev/null 2>&1
long=$(flux submit -N2 -n2 sleep 300)
flux job wait-event $long start
flux submit --urgency=0 -N1 true >/dev/null
flux submit --dependency=afterok:$long true >/dev/null
flux submit -N2 -n2 -g1 sleep 300 >/dev/null
flux submit -q debug -N2 -n4 -g2 sleep 300 >/dev/null
flux submit -N2 -n8 sleep 1 >/dev/null
sleep 1

# Counted jobs: everything but the one that finished before the module.
# Fields separated by | : a pending job's result and node count are empty.
# flux jobs has no GPU field: the eighth is counted from each jobspec.
gpus_of() {
    flux job info "$1" jobspec | jq 'def total(m): (m * (.count | if type == "object" then .min else . end)) as $n
        | if .type == "gpu" then $n else ([.with[]? | total($n)] | add // 0) end;
        [.resources[] | total(1)] | add'
}
jobs=$(flux jobs -a -no "{id}|{queue}|{state}|{result}|{nnodes}|{urgency}|{ncores}" | grep -v "^$before|" | tr -d ' ' |
    while IFS= read -r line; do echo "$line|$(gpus_of "${line%%|*}")"; done)
# Jobs that ran (a job the scheduler rejected is inactive but never ran).
ran_batch=$(flux jobs -a -q batch -no '{id} {t_run}' | grep -v "^$before " | awk '$2 > 0' | wc -l)
s=""
for _ in $(seq 50); do
    s=$(scrape "$url")
    [ "$(sample 'flux_jobs_submitted_total{queue="batch"}' <<<"$s")" = "$(awk -F'|' '$2 == "batch"' <<<"$jobs" | wc -l)" ] &&
        [ "$(sample 'flux_jobs_started_total{queue="batch"}' <<<"$s")" = "$ran_batch" ] && break
    sleep 0.2
done
for q in batch debug; do
    is "$(sample "flux_jobs_submitted_total{queue=\"$q\"}" <<<"$s")" "$(awk -F'|' -v q=$q '$2 == q' <<<"$jobs" | wc -l)" \
        "$q: submitted equals the jobs flux jobs lists (the one from before the module left out)"
done
is "$(sample 'flux_jobs_started_total{queue="batch"}' <<<"$s")" "$ran_batch" \
    "batch: started equals the jobs that ran (flux jobs t_run)"
got=$(for r in completed failed canceled timeout; do echo -n "$r=$(sample "flux_jobs_finished_total{queue=\"batch\",result=\"$r\"}" <<<"$s") "; done)
want=$(for r in COMPLETED FAILED CANCELED TIMEOUT; do echo -n "${r,,}=$(awk -F'|' -v r=$r '$2 == "batch" && $4 == r' <<<"$jobs" | wc -l) "; done)
is "$got" "$want" "batch: finished by result equals flux jobs"
is "$(sample 'flux_jobs_exceptions_total{queue="batch",type="cancel"}' <<<"$s") $(sample 'flux_jobs_exceptions_total{queue="batch",type="timeout"}' <<<"$s")" \
    "1 1" "exceptions by type: one cancel, one timeout"
is "$(sample 'flux_jobs_queue_wait_seconds_count{queue="batch"}' <<<"$s")" "$(sample 'flux_jobs_started_total{queue="batch"}' <<<"$s")" \
    "the wait histogram has one observation per started job"
is "$(sample 'flux_jobs_run_seconds_count{queue="batch",result="completed"}' <<<"$s")" "$(sample 'flux_jobs_finished_total{queue="batch",result="completed"}' <<<"$s")" \
    "the run histogram has one observation per completed job"
# The seconds themselves are flux jobs' own: a wait is t_run - t_submit, a
# run t_cleanup - t_run (the timeout and the cancel end at their exception).
times=$(flux jobs -a -q batch -no '{id} {t_submit} {t_run} {t_cleanup}' | grep -v "^$before ")
same_seconds() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; exit !(a != "" && d < 0.001 && d > -0.001) }'; }
wait_sum=$(awk '$3 > 0 { s += $3 - $2 } END { printf "%.6f", s }' <<<"$times")
ok "batch: the wait histogram's sum is flux jobs' t_run - t_submit ($wait_sum s)" \
    same_seconds "$(sample 'flux_jobs_queue_wait_seconds_sum{queue="batch"}' <<<"$s")" "$wait_sum"
run_sum=$(awk '$3 > 0 && $4 > 0 { s += $4 - $3 } END { printf "%.6f", s }' <<<"$times")
got_run=$(for r in completed failed canceled timeout; do sample "flux_jobs_run_seconds_sum{queue=\"batch\",result=\"$r\"}" <<<"$s"; done |
    awk '{ s += $1 } END { printf "%.6f", s }')
ok "batch: the run histogram's sum is flux jobs' t_cleanup - t_run ($run_sum s)" same_seconds "$got_run" "$run_sum"

# Pending demand, from flux jobs: held = urgency 0, blocked = DEPEND.
pend() { awk -F'|' -v q=$1 -v k=$2 -v col=$3 '$2 == q && ($3 == "SCHED" || $3 == "PRIORITY" || $3 == "DEPEND") {
            kind = ($3 == "DEPEND") ? "blocked" : ($6 == 0 ? "held" : "eligible")
            if (kind == k) n += (col ? $col : 1) } END { print n + 0 }' <<<"$jobs"; }
for q in batch debug; do
    got=$(for k in eligible held blocked; do echo -n "$k=$(sample "flux_queue_pending_jobs{queue=\"$q\",status=\"$k\"}" <<<"$s") "; done)
    want=$(for k in eligible held blocked; do echo -n "$k=$(pend $q $k) "; done)
    is "$got" "$want" "$q: pending jobs by status equal flux jobs"
    got=$(sample "flux_queue_pending_requested_nodes{queue=\"$q\",status=\"eligible\"}" <<<"$s")/$(sample "flux_queue_pending_requested_cores{queue=\"$q\",status=\"eligible\"}" <<<"$s")/$(sample "flux_queue_pending_requested_gpus{queue=\"$q\",status=\"eligible\"}" <<<"$s")
    is "$got" "$(pend $q eligible 5)/$(pend $q eligible 7)/$(pend $q eligible 8)" "$q: eligible jobs' nodes/cores/GPUs equal flux jobs"
done
oldest=$(sample 'flux_queue_pending_oldest_submit_timestamp_seconds{queue="batch",status="eligible"}' <<<"$s")
ok "the oldest eligible pending job's submit time is a recent timestamp ($oldest)" \
    awk -v t="$oldest" -v now="$(date +%s)" 'BEGIN { exit !(t > now - 300 && t <= now + 1) }'
ok "promtool check metrics finds nothing in a scrape with histograms" bash -c "curl -sf '$url' | promtool check metrics"
openmetrics_parses() {
    local om
    om=$(curl -sf -H 'Accept: application/openmetrics-text; version=1.0.0' "$url")
    [ "$(tail -n1 <<<"$om")" = "# EOF" ] || { diag "no # EOF at the end"; return 1; }
    /usr/bin/python3 -c '
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
families = list(text_string_to_metric_families(sys.stdin.read()))
kinds = {f.name: f.type for f in families}
assert kinds["flux_jobs_submitted"] == "counter", kinds.get("flux_jobs_submitted")
assert kinds["flux_jobs_queue_wait_seconds"] == "histogram"
assert kinds["flux_instance"] == "info"
' <<<"$om"
}
ok "the OpenMetrics form of the same scrape passes a strict OpenMetrics parser" openmetrics_parses

# A running job whose shell registers with the module on its rank (the
# shell plugin), so that the opt-in per-job usage series are in the scrape
# below.
shell_plugin_rc "$T_RC"
flux exec -r 1-3 flux module load --name=prometheus "$MODULE_SO" sample-interval=0.5s
flux cancel --all --quiet
flux queue idle --quiet
sampled=$(flux submit -q batch -o userrc="$T_RC" sleep 30)
for _ in $(seq 40); do
    scrape "$url" | grep -q '^flux_job_cpu_cores{' && break
    sleep 0.5
done

# Every metric the dashboard, the alert rules and the adapter rules use is
# one the module exports (all collectors on, a busy instance), or, for the
# scheduler's, one it exports under the other kind of scheduler (Fluxion's
# queues and matches, flux-core schedulers' passes), or flux-accounting's,
# as the recorded sets' expositions show.
families=$( (scrape "$url"; cat "$REPO"/tests/fixtures/*/exposition.txt "$REPO"/tests/fixtures/flux-accounting/*/exposition.txt) | awk '/^# TYPE/ { print $3 }' | sort -u)
adapter_outputs=$(awk '/as: / { gsub(/"/, "", $2); print $2 }' "$REPO/etc/prometheus-adapter/flux-rules.yml")
# Recording rules' own names (level:metric:operations) are outputs, not
# metrics read.
unknown=$(cat "$REPO"/etc/grafana/*.json "$REPO"/etc/prometheus/*.yml "$REPO"/etc/prometheus-adapter/*.yml |
    sed -E 's/\b[a-z_]+:[a-z0-9_]+:[a-z0-9_]+\b//g' | grep -oE 'flux_[a-z_]+' |
    sed -E 's/_(bucket|sum|count)$//' | sort -u | grep -vxF -f <(echo "$families"; echo "$adapter_outputs") || true)
ok "the dashboard, alerts and adapter rules use only exported metrics${unknown:+ (unknown: $(echo $unknown))}" test -z "$unknown"
flux cancel "$sampled"

flux exec -r all flux module remove prometheus
done_testing
