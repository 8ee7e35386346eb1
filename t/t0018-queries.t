#!/bin/bash
# Every query the kit ships (each panel of etc/grafana/flux-dashboard.json,
# each alert rule expression, each prometheus-adapter metricsQuery) returns
# a result from a real Prometheus scraping two busy instances: one with two
# named queues (this one) and one with only the anonymous queue (started
# beside it). Where a query legitimately returns nothing (an alert whose
# condition is false on a healthy instance) the test says why, and checks
# that every series the query reads is there.
. "$(dirname "$0")/lib.sh"
if ! command -v prometheus >/dev/null; then
    echo "1..0 # SKIP prometheus is not installed (Debian package prometheus)"
    exit 0
fi
writable_config props.toml
run_inside_flux 4 --test-hosts=node[0-3] --config-path="${T_CONFDIR:-}"

dir=$(mktemp -d)
pids=()
cleanup() {
    # The load loops and the instance beside this one end when they see the
    # stop file; the instance is waited for, so that nothing outlives the test.
    touch "$dir/stop"
    for p in "${pids[@]}"; do
        [ "$p" = "${single_pid:-}" ] || kill "$p" 2>/dev/null
    done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$dir" "$T_CONFDIR"
}
trap cleanup EXIT

# The queries, one per line: KIND<TAB>NAME<TAB>EXPR (KIND panel, alert or
# adapter), with $job and the adapter's templates filled in; $instance is
# filled in per instance below.
/usr/bin/python3 - "$REPO" >"$dir/queries" <<'EOF'
import json, sys, yaml
repo = sys.argv[1]
def emit(kind, name, expr):
    print(f"{kind}\t{name}\t{' '.join(expr.split())}")
dash = json.load(open(f"{repo}/etc/grafana/flux-dashboard.json"))
for panel in dash["panels"]:
    for t in panel.get("targets", []):
        emit("panel", panel["title"], t["expr"].replace("$job", "flux"))
for group in yaml.safe_load(open(f"{repo}/etc/prometheus/flux-alerts.yml"))["groups"]:
    for rule in group["rules"]:
        emit("alert" if "alert" in rule else "record", rule.get("alert") or rule.get("record"), rule["expr"])
for rule in yaml.safe_load(open(f"{repo}/etc/prometheus-adapter/flux-rules.yml"))["externalRules"]:
    series = rule["seriesQuery"].split("{")[0]
    expr = rule["metricsQuery"].replace("<<.Series>>", series).replace("<<.LabelMatchers>>", 'instance=~"$instance"')
    emit("adapter", rule["name"]["as"], expr)
EOF
nqueries=$(wc -l <"$dir/queries")
plan $((2 * nqueries))

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Real jobs load the job-shell plugin, whose usage records the module
# counts (the "What jobs used" panels and rules).
PLUGIN=${FLUX_PROMETHEUS_SHELL_SO:-$REPO/target/release/libflux_prometheus_shell.so}
[ -f "$PLUGIN" ] || (cd "$REPO" && cargo build --release --quiet) >&2
printf 'plugin.load { file = "%s" }\n' "$PLUGIN" >"$dir/rc.lua"
# A steady overload (more short simulated jobs than the nodes take, so some
# are always pending) in queue $1 ("" for the anonymous queue), with a real
# job now and then, until stop.
load() {
    local qopt=() n=0
    [ -n "$1" ] && qopt=(-q "$1")
    while [ -d "$dir" ] && [ ! -e "$dir/stop" ]; do
        flux submit --quiet --cc=1-6 "${qopt[@]}" \
            --setattr=system.exec.test.run_duration=0.5s true 2>/dev/null
        [ $((n++ % 4)) = 0 ] && flux submit --quiet "${qopt[@]}" -o userrc="$dir/rc.lua" true 2>/dev/null
        sleep 0.5
    done
}

# This instance: two named queues, a held job, a dependent job, a drained
# node.
flux queue start --all >/dev/null 2>&1
# flux-accounting, where it is installed: its priority plugin feeds the
# "Fair share and limits" panels (t0033 checks their numbers). The jobs
# here are the instance owner's, in the bank flux-accounting gives the
# owner, whose association lists no queue: flux-accounting knows only a
# queue this instance does not have, so that batch and debug stay open.
# The anonymous-queue instance has no flux-accounting.
if flux account --help >/dev/null 2>&1 && flux jobtap load -r .priority-default mf_priority.so 2>/dev/null; then
    flux account -p "$dir/accounting.db" create-db >/dev/null 2>&1
    flux account-service -p "$dir/accounting.db" -t >/dev/null 2>&1
    flux account add-bank root 1 >/dev/null
    flux account add-bank --parent-bank=root science 1 >/dev/null
    flux account add-queue gpu --max-running-jobs=4 >/dev/null
    flux account add-user --username="$(id -un)" --userid="$(id -u)" --bank=science >/dev/null
    flux account-priority-update -p "$dir/accounting.db"
fi
# Every collector, the opt-in ones too: the kit has panels for them all.
# The user label on the job-flow series: the per-user rules read it. The
# wait split and the pending reasons: the "Why jobs wait" panels read them.
# The module on every rank samples running jobs, and the per-job usage
# series are on: a long real job in each queue gives them samples.
ALL="collectors=jobs,resources,queues,broker,jobflow,users,accounting,scheduler,internals,nodes,jobmap jobflow-labels=user sample-interval=1s job-usage-series=10 wait-phases=true pending-reasons=true"
flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 poll-interval=1s $ALL
flux exec -r 1-3 flux module load --name=prometheus "$MODULE_SO" sample-interval=1s
multi=$(module_url | sed 's|^http://||; s|/metrics$||')
for q in batch debug; do flux submit --quiet -q $q -o userrc="$dir/rc.lua" sleep 600; done
flux submit --quiet --urgency=0 -q batch sleep 300
flux submit --quiet --dependency=afterok:"$(flux submit -q debug sleep 300)" -q debug true
flux resource drain 3 "t0018"
load batch &
pids+=($!)
load debug &
pids+=($!)

# Beside it, an instance with only the anonymous queue, equally busy.
FLUX_URI= "$(find_flux)" start --test-size=2 bash -c '
    flux module load --name=prometheus "'"$MODULE_SO"'" listen=127.0.0.1:0 poll-interval=1s '"$ALL"'
    flux exec -r 1 flux module load --name=prometheus "'"$MODULE_SO"'" sample-interval=1s
    flux module stats prometheus | jq -r .url >"'"$dir"'/single.url"
    flux submit --quiet -o userrc="'"$dir"'/rc.lua" sleep 600
    flux submit --quiet --urgency=0 sleep 300
    n=0
    while [ -d "'"$dir"'" ] && [ ! -e "'"$dir"'/stop" ]; do
        flux submit --quiet --cc=1-6 --setattr=system.exec.test.run_duration=0.5s true
        [ $((n++ % 4)) = 0 ] && flux submit --quiet -o userrc="'"$dir"'/rc.lua" true
        sleep 0.5
    done
    flux cancel --all >/dev/null 2>&1
    flux exec -r all flux module remove prometheus' >"$dir/single.log" 2>&1 &
single_pid=$!
pids+=($single_pid)
for _ in $(seq 100); do [ -s "$dir/single.url" ] && break; sleep 0.2; done
single=$(sed 's|^http://||; s|/metrics$||' "$dir/single.url")

port=$(free_port)
cat >"$dir/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["$REPO/etc/prometheus/flux-alerts.yml"]
scrape_configs:
  - job_name: flux
    static_configs:
      - targets: ["$multi", "$single"]
EOF
prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
    --web.listen-address="127.0.0.1:$port" >"$dir/prometheus.log" 2>&1 &
pids+=($!)
prom=http://127.0.0.1:$port
for _ in $(seq 100); do curl -sf "$prom/-/ready" >/dev/null 2>&1 && break; sleep 0.2; done
# Enough samples for the rate() windows and the histogram quantiles.
sleep 25

# How many series query $1 returns.
results() { curl -sf "$prom/api/v1/query" --data-urlencode "query=$1" | jq -r '.data.result | length'; }

# The scheduler instance $1 runs, as it reports it.
sched_of() {
    curl -sf "$prom/api/v1/query" --data-urlencode "query=flux_scheduler_info{instance=\"$1\"}" |
        jq -r '.data.result[0].metric.name // ""'
}
# Whether query $1 reads statistics only another kind of scheduler than $2
# keeps: Fluxion's queues and matches, or flux-core's schedulers' passes.
reads_other_scheduler() {
    if [ "$2" = sched-fluxion-qmanager ]; then
        grep -qE 'flux_scheduler_(passes|yields|pending_jobs|delay|pass_)' <<<"$1"
    else
        grep -qE 'flux_scheduler_(queue_|actions|match|graph|policy)' <<<"$1"
    fi
}

# Whether instance $2 exports none of the scheduler statistics query $1
# reads (a scheduler with no statistics of its own, such as flux-core
# 0.78's C sched-simple, exports only flux_scheduler_info).
keeps_none_of() {
    local metric
    for metric in $(grep -oE 'flux_scheduler_[a-z_]+' <<<"$1" | sort -u); do
        [ "$(results "$metric{instance=\"$2\"}")" -gt 0 ] && return 1
    done
    grep -qE 'flux_scheduler_[a-z_]+' <<<"$1"
}

while IFS=$'\t' read -r kind name expr; do
    for instance in "$multi" "$single"; do
        what=$([ "$instance" = "$multi" ] && echo "two queues" || echo "anonymous queue")
        sched=$(sched_of "$instance")
        if grep -q 'DCGM_' <<<"$expr"; then
            # Test instances have no GPUs and no dcgm-exporter.
            ok "$kind '$name' ($what): joins dcgm-exporter's series, checked by t0023 against a DCGM-shaped exporter" true
            continue
        fi
        if grep -qE 'flux_jobs?_(running_)?(gpus_busy|measured_gpus|gpu_busy_seconds|gpu_measured_seconds|gpu_utilization)' <<<"$expr"; then
            # Test instances have no GPUs, so NVML measures none: every
            # series the query reads must be there (zero) all the same.
            missing=""
            for metric in $(grep -oE '\bflux_[a-z_]+' <<<"$expr" | sed 's/_bucket$//' | sort -u); do
                [ "$(results "{__name__=~\"${metric}(_bucket)?\",instance=\"$instance\"}")" -gt 0 ] || missing="$missing $metric"
            done
            ok "$kind '$name' ($what): reads NVML's GPU figures, which test instances have none of; every series it reads present${missing:+ (missing:$missing)}" test -z "$missing"
            continue
        fi
        if grep -q 'flux_accounting_' <<<"$expr" &&
            [ "$(results "flux_accounting_associations{instance=\"$instance\"}")" = 0 ]; then
            ok "$kind '$name' ($what): reads flux-accounting's figures, which this instance has none of (t0033 checks them)" true
            continue
        fi
        if reads_other_scheduler "$expr" "$sched" || keeps_none_of "$expr" "$instance"; then
            ok "$kind '$name' ($what): reads statistics that $sched does not keep" true
            continue
        fi
        q=${expr//\$instance/$instance}
        # Alert rules name no instance: their results are kept to this one.
        [ "$kind" = alert ] && q="($q) and on (instance) up{instance=\"$instance\"}"
        # A query over pending jobs can come up empty at the instant every
        # job the load submitted has just started: ask again for up to 10 s
        # before deciding that it returns nothing.
        for _ in $(seq 20); do
            n=$(results "$q")
            [ "${n:-0}" -gt 0 ] && break
            [ "$kind" = alert ] && break
            sleep 0.5
        done
        if [ "${n:-0}" -gt 0 ]; then
            ok "$kind '$name' ($what): $n series" true
        elif [ "$kind" = alert ]; then
            # A condition that is false on a healthy instance returns
            # nothing: then every series it reads must be there.
            missing=""
            for metric in $(grep -oE '\b(flux_[a-z_]+|up)\b' <<<"$expr" | sort -u); do
                [ "$(results "$metric{instance=\"$instance\"}")" -gt 0 ] || missing="$missing $metric"
            done
            ok "$kind '$name' ($what): condition false on this healthy instance, every series it reads present${missing:+ (missing:$missing)}" test -z "$missing"
        else
            ok "$kind '$name' ($what): no result for: $q" false
        fi
    done
done <"$dir/queries"
# Modules loaded by hand are not unloaded by rc3: the broker would cancel
# it at exit and report that it was not properly shut down.
flux cancel --all --quiet
flux exec -r all flux module remove prometheus
done_testing
