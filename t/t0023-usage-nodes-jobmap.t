#!/bin/bash
# Who is using the machine, inside a real broker faking 8 nodes of 4 cores
# and 2 GPUs: usage by user and by project against flux jobs -A, each
# node's states against flux resource status -s all, the job map against
# flux jobs and each job's R, all while short jobs come and go; then
# /metrics?collect[]=, the load-time checks, and a real Prometheus joining
# the job map with a DCGM-shaped exporter for GPU utilization by job.
. "$(dirname "$0")/lib.sh"
if [ -z "${FLUX_PROMETHEUS_TEST_INNER:-}" ] && flux_cmd=$(find_flux) &&
    ! "$flux_cmd" start --help 2>&1 | grep -q -- '--conf=VALUE'; then
    echo "1..0 # SKIP this flux start has no --conf to fake a cluster"
    exit 0
fi
run_inside_flux 1 --conf=fake-resources.nnodes=8 --conf=fake-resources.cores-per-node=4 \
    --conf=fake-resources.gpus-per-node=2 -Sstatedir="$(mktemp -d)"

plan 20

[ -x "$REPO/target/release/flux-prometheus" ] || (cd "$REPO" && cargo build --release --quiet) >&2
export FLUX_EXEC_PATH_PREPEND=$REPO/target/release

dir=$(mktemp -d)
pids=()
cleanup() {
    touch "$dir/stop"
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$dir"
}
trap cleanup EXIT
export AGREE_TRIES=100
PY=/usr/bin/python3

ALL=collectors=jobs,resources,queues,broker,jobflow,users,accounting,scheduler,internals,nodes,jobmap
flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 poll-interval=0.3s $ALL
url=$(module_url)

# Long jobs in three projects (one by bank), a held one, and a drained node.
run() { flux submit --quiet --setattr=system.exec.test.run_duration=3600s "$@" true; }
run -N2 -n2 -g1 --setattr=system.project=chem >/dev/null
run -n1 --setattr=system.bank=physics >/dev/null
run -n3 -g2 >/dev/null
flux submit --quiet --urgency=0 --setattr=system.project=chem true >/dev/null
flux resource drain 7 "bad dimm"
# Churn: short jobs, some canceled while pending.
churn() {
    while [ ! -e "$dir/stop" ]; do
        flux submit --quiet --cc=1-4 --setattr=system.exec.test.run_duration=0.3s \
            --setattr=system.project=bio true >/dev/null 2>&1
        id=$(flux submit --urgency=0 true 2>/dev/null) && flux cancel "$id" 2>/dev/null
        sleep 0.4
    done
}
churn &
pids+=($!)

# Per user and per project: pending, running, allocated cores and distinct
# nodes, as flux jobs -A lists them and as scraped.
usage_agrees() {
    local s cli want got
    for _ in $(seq "$AGREE_TRIES"); do
        s=$(scrape "$url")
        cli=$(flux jobs -A -no '{username}|{state}|{ncores}|{ranks}|{project}|{bank}')
        want=$($PY -c '
import sys
rows = {}
for line in sys.stdin.read().splitlines():
    user, state, ncores, ranks, project, bank = line.split("|")
    for key in ("user=" + user, "project=" + (project or bank or "none")):
        r = rows.setdefault(key, [0, 0, 0, set()])
        if state in ("RUN", "CLEANUP"):
            r[1] += 1
            r[2] += int(ncores or 0)
            for part in ranks.strip("[]").split(","):
                if part:
                    lo, _, hi = part.partition("-")
                    r[3].update(range(int(lo), int(hi or lo) + 1))
        else:
            r[0] += 1
print(";".join(f"{k} {p} {n} {c} {len(nodes)}" for k, (p, n, c, nodes) in sorted(rows.items())))
' <<<"$cli")
        got=$($PY -c '
import re, sys
rows = {}
for line in sys.stdin:
    m = re.match(r"flux_(user|project)_(jobs|allocated_cores|allocated_nodes)\{(user|project)=\"([^\"]*)\"(?:,state=\"(\w+)\")?\} (\S+)", line)
    if not m:
        continue
    kind, what, _, name, state, value = m.groups()
    r = rows.setdefault(f"{kind}={name}", [0, 0, 0, 0])
    i = {"pending": 0, "running": 1}.get(state, 2 if what == "allocated_cores" else 3)
    r[i] = int(float(value))
print(";".join(f"{k} {p} {n} {c} {nodes}" for k, (p, n, c, nodes) in sorted(rows.items()) if p or n))
' <<<"$s")
        [ -n "$want" ] && [ "$want" = "$got" ] && return 0
        sleep 0.2
    done
    diag "scraped:    $got"
    diag "flux jobs:  $want"
    return 1
}

# Each node's states, as flux resource status -s all lists them (a `*`
# after the state marks the node offline), against flux_node_state.
nodes_agree() {
    local s cli want got
    for _ in $(seq "$AGREE_TRIES"); do
        s=$(scrape "$url?collect[]=nodes")
        cli=$(flux resource status -s all -no '{state} {ranks}')
        want=$($PY -c '
import sys
nodes = {}
for line in sys.stdin.read().splitlines():
    parts = line.split()
    if len(parts) < 2:
        continue
    state, ranks = parts
    offline = state.endswith("*")
    for part in ranks.split(","):
        lo, _, hi = part.partition("-")
        for r in range(int(lo), int(hi or lo) + 1):
            nodes.setdefault(r, set()).add(state.rstrip("*"))
            if offline:
                nodes[r].add("offline")
print(";".join(str(r) + ":" + ",".join(sorted(s)) for r, s in sorted(nodes.items())))
' <<<"$cli")
        got=$($PY -c '
import re, sys
nodes = {}
for line in sys.stdin:
    m = re.match(r"flux_node_state\{node=\"[^\"]*\",rank=\"(\d+)\",state=\"(\w+)\"\} 1$", line.strip())
    if m:
        nodes.setdefault(int(m.group(1)), set()).add(m.group(2))
print(";".join(str(r) + ":" + ",".join(sorted(s)) for r, s in sorted(nodes.items())))
' <<<"$s")
        [ -n "$want" ] && [ "$want" = "$got" ] && return 0
        sleep 0.2
    done
    diag "scraped:                    $got"
    diag "flux resource status -s all: $want"
    return 1
}

# Lines "ID NODELIST" to "ID HOST", one per host (flux hostlist would take
# a lone host name for a job ID).
expand_nodes() {
    flux python -c '
import sys
from flux.hostlist import Hostlist
for line in sys.stdin:
    words = line.split()
    if len(words) == 2:
        for host in Hostlist(words[1]):
            print(words[0], host)'
}

# Every node of every running job, as flux jobs -A lists them.
jobmap_agrees() {
    local s want got
    for _ in $(seq "$AGREE_TRIES"); do
        s=$(scrape "$url?collect[]=jobmap")
        want=$(flux jobs -A --filter=running -no '{id.f58} {nodelist}' | expand_nodes | sort | tr '\n' ';')
        got=$(sed -n 's/^flux_job_node_info{jobid="\([^"]*\)",user="[^"]*",node="\([^"]*\)"} 1$/\1 \2/p' <<<"$s" |
            sort | tr '\n' ';')
        [ -n "$want" ] && [ "$want" = "$got" ] && return 0
        sleep 0.2
    done
    diag "scraped:   $got"
    diag "flux jobs: $want"
    return 1
}

sleep 2
misses=""
for round in 1 2 3 4 5; do
    usage_agrees || misses+=" usage($round)"
    nodes_agree || misses+=" nodes($round)"
    jobmap_agrees || misses+=" jobmap($round)"
done
ok "usage by user and project, each node's states and the job map agree with flux jobs -A and flux resource status -s all, five times while jobs come and go${misses:+ (missed:$misses)}" test -z "$misses"

touch "$dir/stop"
for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
pids=()
flux queue idle --quiet --timeout=30s 2>/dev/null || true
ok "usage agrees once the instance is quiet" usage_agrees
ok "each node's states agree once the instance is quiet" nodes_agree
# Faked ranks have no broker, and draining one posts no journal event
# (flux-core 0.88; the drain command fails, yet the rank is drained). The
# kept resource.status answer is handed out again only after the resource
# module's request count showed no request from another client.
asks() { flux module stats prometheus | jq -r ".resource_status.$1"; }
reused=$(asks reused) counted=$(asks counted)
sleep 2
ok "fake resources: on a quiet instance the kept resource.status answer is reused, after a request count (reused $reused -> $(asks reused), counted $counted -> $(asks counted))" \
    test "$(asks reused)" -gt "$reused" -a "$(asks counted)" -gt "$counted"
flux resource drain 6 "loose cable" 2>/dev/null || true
flux resource undrain 7 2>/dev/null || true
drained_series() {
    for _ in $(seq 50); do
        [ "$(scrape "$url?collect[]=nodes" | grep '^flux_node_drain_info{' | sort | tr '\n' ';')" = "$1" ] && return 0
        sleep 0.2
    done
    return 1
}
ok "fake resources: a drain and an undrain of faked ranks, which post no event, show within seconds" \
    drained_series 'flux_node_drain_info{node="fake6",rank="6",reason="loose cable"} 1;'
ok "each node's states agree after them" nodes_agree
flux resource drain 7 "bad dimm" 2>/dev/null || true
flux resource undrain 6 2>/dev/null || true
ok "the job map agrees once the instance is quiet" jobmap_agrees

# GPUs: each running job's from its R, as dcgm-exporter labels them.
want=$(flux jobs -A --filter=running -no '{id.f58} {id}' | while read -r f58 id; do
    flux job info "$id" R | jq -c --arg f58 "$f58" '{f58: $f58, r: .execution}'
done | flux python -c '
import json, sys
from flux.hostlist import Hostlist
out = []
for line in sys.stdin:
    job = json.loads(line)
    r = job["r"]
    hosts = list(Hostlist(",".join(r["nodelist"])))
    def ids(text):
        for part in filter(None, text.split(",")):
            lo, _, hi = part.partition("-")
            yield from range(int(lo), int(hi or lo) + 1)
    # R_lite may name a rank in more than one entry.
    gpus = {}
    for entry in r["R_lite"]:
        for rank in ids(entry["rank"]):
            gpus.setdefault(rank, set()).update(ids(entry["children"].get("gpu", "")))
    for rank, host in zip(sorted(gpus), hosts):
        for g in sorted(gpus[rank]):
            out.append(" ".join([job["f58"], host, str(g)]))
print(";".join(sorted(out)))')
got=$(scrape "$url?collect[]=jobmap" |
    sed -n 's/^flux_job_gpu_info{jobid="\([^"]*\)",user="[^"]*",Hostname="\([^"]*\)",gpu="\([0-9]*\)"} 1$/\1 \2 \3/p' |
    sort | tr '\n' ';' | sed 's/;$//')
is "$got" "${want:-none found in the R of running jobs}" "each GPU of each running job is one flux_job_gpu_info series, as the job's R gives it"

# collect[] and exclude[].
code=$(curl -s -o "$dir/body" -w '%{http_code}' "$url?collect[]=nodez")
ok "collect[] with an unknown name answers 400 naming it" \
    test "$code" = 400 -a "$(grep -c "collector 'nodez' is unknown" "$dir/body")" = 1
only=$(scrape "$url?collect[]=nodes" | grep -v '^#' | cut -d'{' -f1 | cut -d' ' -f1 | sort -u | tr '\n' ' ')
ok "collect[]=nodes serves the nodes families and the exporter's own only (got: $only)" \
    test -z "$(tr ' ' '\n' <<<"$only" | grep -v -E '^(flux_node_|flux_prometheus_|$)')"
ok "the exporter's own series under collect[]=nodes are about the nodes collector only" \
    test "$(scrape "$url?collect[]=nodes" | grep -c '^flux_prometheus_collector_up{')" = 1
rest=$(scrape "$url?exclude[]=nodes&exclude[]=jobmap")
ok "exclude[]=nodes&exclude[]=jobmap serves everything else" \
    test "$(grep -c '^flux_\(node\|job\)_' <<<"$rest")" = 0 -a "$(grep -c '^flux_user_jobs{' <<<"$rest")" -gt 0
ok "the full exposition passes promtool check metrics" bash -c "curl -sf '$url' | promtool check metrics"

# What the configuration is told at load.
ok "users without jobflow is refused at load" \
    bash -c "! flux module load --name=prom2 '$MODULE_SO' listen=127.0.0.1:0 collectors=jobs,users 2>/dev/null"
ok "the log says why: users needs the jobflow collector" \
    bash -c "flux dmesg | grep -q 'collectors=jobs,users: users needs the jobflow collector'"
flux module load --name=prom2 "$MODULE_SO" listen=127.0.0.1:0 per-node=true
url2=$(module_url prom2)
drain_series() {
    for _ in $(seq 50); do
        curl -sf "$url2" | grep -q '^flux_node_drain_info{node="fake7",rank="7",reason="bad dimm"} 1' && return 0
        sleep 0.2
    done
    return 1
}
ok "per-node=true (deprecated) turns the nodes collector on" drain_series
ok "per-node=true says it is deprecated in the log" bash -c "flux dmesg | grep -q 'per-node is deprecated'"
# flux resource drain lists the drain's time; the series carries it.
since=$(flux resource drain -n -o '{ranks} {timestamp}' | awk '$1 == 7 { print $2 }')
got=$(curl -sf "$url2" | awk '$1 == "flux_node_drain_timestamp_seconds{node=\"fake7\",rank=\"7\"}" { print $2 }')
ok "the drained node's series carries when it was drained ($got; flux resource drain: $since)" \
    awk -v a="$got" -v b="$since" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d < 1) }' 
flux module remove prom2

# A real Prometheus: the module's two jobs as flux prometheus scrape-config
# writes them, and a static exporter shaped like dcgm-exporter, serving a
# utilization per GPU of every fake node (gpu 0: 10 x node, gpu 1: 10 x node + 5).
if ! command -v prometheus >/dev/null; then
    skip "GPU utilization by job in Prometheus" "prometheus is not installed (Debian package prometheus)"
    skip "the GPU utilization recording rule" "prometheus is not installed (Debian package prometheus)"
    flux cancel --all >/dev/null 2>&1
    flux module remove prometheus
    done_testing
fi
mkdir -p "$dir/dcgm"
{
    echo '# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).'
    echo '# TYPE DCGM_FI_DEV_GPU_UTIL gauge'
    for n in 0 1 2 3 4 5 6 7; do
        for g in 0 1; do
            echo "DCGM_FI_DEV_GPU_UTIL{gpu=\"$g\",UUID=\"GPU-$n-$g\",device=\"nvidia$g\",modelName=\"NVIDIA H100\",Hostname=\"fake$n\"} $((10 * n + 5 * g))"
        done
    done
} >"$dir/dcgm/metrics"
free_port() { $PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
dcgm_port=$(free_port)
(cd "$dir/dcgm" && exec $PY -m http.server --bind 127.0.0.1 "$dcgm_port") >/dev/null 2>&1 &
pids+=($!)
port=$(free_port)
{
    echo "global: {scrape_interval: 1s, evaluation_interval: 1s}"
    echo "rule_files: [\"$REPO/etc/prometheus/flux-alerts.yml\"]"
    flux prometheus scrape-config | sed 's/scrape_interval: 60s/scrape_interval: 1s/; s/scrape_timeout: 30s/scrape_timeout: 1s/'
    echo "  - job_name: dcgm"
    echo "    static_configs: [{targets: [\"127.0.0.1:$dcgm_port\"]}]"
} >"$dir/prometheus.yml"
prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
    --web.listen-address="127.0.0.1:$port" >"$dir/prometheus.log" 2>&1 &
pids+=($!)
prom=http://127.0.0.1:$port
# Each running job's mean utilization, from its GPUs as the job map has them.
want=$(scrape "$url?collect[]=jobmap" |
    sed -n 's/^flux_job_gpu_info{jobid="\([^"]*\)",user="[^"]*",Hostname="fake\([0-9]*\)",gpu="\([0-9]*\)"} 1$/\1 \2 \3/p' |
    awk '{ s[$1] += 10 * $2 + 5 * $3; n[$1]++ } END { for (j in s) printf "%s %g\n", j, s[j] / n[j] }' | sort | tr '\n' ';')
query='avg by (jobid, user) (DCGM_FI_DEV_GPU_UTIL * on (Hostname, gpu) group_left (jobid, user) flux_job_gpu_info)'
got=""
for _ in $(seq 150); do
    got=$(curl -sf "$prom/api/v1/query" --data-urlencode "query=$query" |
        jq -r '.data.result[] | "\(.metric.jobid) \(.value[1])"' 2>/dev/null | sort | tr '\n' ';')
    rule=$(curl -sf "$prom/api/v1/query" --data-urlencode "query=jobid:flux_gpu_utilization_percent:avg" |
        jq -r '.data.result[] | "\(.metric.jobid) \(.value[1])"' 2>/dev/null | sort | tr '\n' ';')
    [ -n "$want" ] && [ "$got" = "$want" ] && [ "$rule" = "$want" ] && break
    sleep 0.2
done
is "$got" "$want" "Prometheus's GPU utilization by job (dcgm-exporter joined with flux_job_gpu_info) is each job's GPUs' mean"
is "$rule" "$want" "the recording rule jobid:flux_gpu_utilization_percent:avg gives the same"

flux cancel --all >/dev/null 2>&1
flux module remove prometheus
done_testing
