#!/bin/bash
# Jobs with GPUs, on nodes without NVML: two brokers whose resources say
# each node has two GPUs (no real GPU is needed). The shell plugin names a
# job's GPUs when it registers; the module on each rank tries to load NVML
# for them, says once that it cannot, and samples the job without GPU
# figures; the job's record at the end has none either, and the job is
# none the worse.
. "$(dirname "$0")/lib.sh"
if [ -z "${FLUX_PROMETHEUS_TEST_INNER:-}" ] && find_flux >/dev/null; then
    T_CONFDIR=$(mktemp -d)
    host=$(hostname)
    printf '{"version":1,"execution":{"R_lite":[{"rank":"0-1","children":{"core":"0-1","gpu":"0-1"}}],"starttime":0,"expiration":0,"nodelist":["%s,%s"]}}\n' \
        "$host" "$host" >"$T_CONFDIR/R.json"
    printf '[resource]\npath = "%s/R.json"\nnoverify = true\n' "$T_CONFDIR" >"$T_CONFDIR/resource.toml"
    export T_CONFDIR
    trap 'rm -rf "$T_CONFDIR"' EXIT
fi
run_inside_flux 2 --config-path="${T_CONFDIR:-/nonexistent}"

export FLUX_EXEC_PATH_PREPEND=$REPO/target/release
if ldconfig -p 2>/dev/null | grep -q 'libnvidia-ml\.so\.1'; then
    echo "1..0 # SKIP this machine has NVML: the test is of nodes without it"
    exit 0
fi
plan 7

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
shell_plugin_rc "$dir/rc.lua"
flux exec -r all flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 sample-interval=0.5s
url=$(module_url)
value() { value_at "$url" "$1"; }

id=$(flux submit -N2 -n2 -g1 -o userrc="$dir/rc.lua" --output="$dir/out.{{taskid}}" \
    sh -c 'echo "$CUDA_VISIBLE_DEVICES"; sleep 4')
flux job wait-event -t 30 "$id" start >/dev/null
wait_for_value "$url" flux_jobs_running_allocated_cores 2
is "$(value flux_jobs_running_sampled)" 1 "a job with GPUs is sampled without NVML"
is "$(value flux_jobs_running_measured_gpus)" 0 "and none of its GPUs counts as measured"
said=$(flux exec -r all sh -c 'flux dmesg | grep -c "usage sampler: NVML could not be loaded"' | awk '{ s += $1 } END { print s }')
# Rank 1's line is in its own log; each rank says it once, however many looks.
is "$said" 2 "each rank says once that NVML cannot be loaded"

flux job wait-event -t 60 "$id" clean >/dev/null
is "$(flux jobs -no '{result}' "$id")" COMPLETED "the job is none the worse"
is "$(cat "$dir"/out.* | grep -cx '[01]')" 2 "each task had its GPU (CUDA_VISIBLE_DEVICES)"
record=$(flux job eventlog -p exec -f json "$id" | jq -c 'select(.name == "prometheus.usage") | .context')
is "$(jq '.nodes | length' <<<"$record")" 2 "the job's record has both nodes"
is "$(jq '[.nodes[] | keys[] | select(startswith("gpu_"))] | length' <<<"$record")" 0 \
    "and no GPU figures, none having been measured"

flux exec -r all flux module remove prometheus
done_testing
