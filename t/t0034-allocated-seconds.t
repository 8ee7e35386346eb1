#!/bin/bash
# Core-, GPU- and node-seconds allocated to each user, project and queue
# (users collector), against the sum over flux jobs -a of ncores and nnodes
# (and a job's R's GPUs) times runtime: after jobs of every ending, growing
# while a job runs, after a module reload, and after the instance is
# restarted on the same state directory; and jobs the job manager purged
# still counted after a reload and after a restart.
. "$(dirname "$0")/lib.sh"
run_inside_flux 1
plan 18

flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 poll-interval=0.3s
url=$(module_url)
value() { value_at "$url" "$1"; }
me=$(id -un)

# flux jobs -a's sum of $1 (ncores or nnodes) times runtime.
from_cli() { flux jobs -a -no "{$1} {runtime}" | awk '$2 != "" { s += $1 * $2 } END { printf "%.3f\n", s }'; }
# Whether series $1 is within 0.5 % of $2 (and both are above 0).
near() {
    awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && b > 0 && d <= 0.005 * b) }'
}
# Whether $1 is $2 but for the last digits of a sum of the same seconds
# taken in another order (a reload sums the jobs in the order it reads
# them).
same() {
    awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(b > 0 && d <= 1e-9 * b) }'
}
# Whether series $1 comes to $2 within 10 s, as test $3 (same or near)
# compares them.
comes_to() {
    local series=$1 want=$2 test=$3 got
    for _ in $(seq 40); do
        got=$(value "$series")
        "$test" "$got" "$want" && return 0
        sleep 0.25
    done
    diag "$series: module $got, want $want"
    return 1
}
agrees() {
    local series=$1 what=$2 got want
    for _ in $(seq 40); do
        got=$(value "$series")
        want=$(from_cli "$what")
        near "$got" "$want" && return 0
        sleep 0.25
    done
    diag "$series: module $got, flux jobs -a $want"
    return 1
}

flux run -n2 sleep 1
flux run -n1 false 2>/dev/null || true
canceled=$(flux submit -n1 sleep 60)
flux job wait-event -t 30 "$canceled" start >/dev/null
sleep 1
flux cancel "$canceled"
flux job wait-event -t 30 "$canceled" clean >/dev/null
flux run -n1 -t 1s sleep 30 2>/dev/null || true

ok "a queue's core-seconds are flux jobs -a's ncores x runtime" \
    agrees flux_queue_allocated_core_seconds_total ncores
ok "a user's core-seconds too" agrees "flux_user_allocated_core_seconds_total{user=\"$me\"}" ncores
ok "a queue's node-seconds are flux jobs -a's nnodes x runtime" \
    agrees flux_queue_allocated_node_seconds_total nnodes
is "$(value 'flux_project_allocated_core_seconds_total{project="none"}')" \
    "$(value flux_queue_allocated_core_seconds_total)" "jobs with no project count under project none"

# A running job's seconds grow as it runs.
running=$(flux submit -n2 sleep 60)
flux job wait-event -t 30 "$running" start >/dev/null
# Read every poll interval, and published within the busy publish
# interval (1 s): over 4 s, 8 core-seconds give or take 2 x 1.3.
a=$(value flux_queue_allocated_core_seconds_total)
sleep 4
b=$(value flux_queue_allocated_core_seconds_total)
ok "while a 2-core job runs, the counter grows by about 2 core-seconds a second (from $a to $b in 4 s)" \
    awk -v a="$a" -v b="$b" 'BEGIN { exit !(b - a >= 5.4 && b - a <= 10.6) }'
flux cancel "$running"
flux job wait-event -t 30 "$running" clean >/dev/null
ok "ended, it agrees with flux jobs -a again" agrees flux_queue_allocated_core_seconds_total ncores

before=$(value flux_queue_allocated_core_seconds_total)
flux module remove prometheus
flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 poll-interval=0.3s
url=$(module_url)
ok "after a module reload the counter is read again from the jobs: the same ($before)" \
    comes_to flux_queue_allocated_core_seconds_total "$before" same

# Jobs purged: no longer there to be read again, but what they ended with
# is saved in the KVS when the module is removed, and carried.
flux job purge --force --num-limit=0 >/dev/null
is "$(flux jobs -a -n | wc -l)" 0 "every inactive job is purged"
flux module remove prometheus
is "$(flux kvs get prometheus.allocated-seconds | jq .version)" 1 \
    "the module saved the allocation-seconds of the runs that ended in the KVS"
flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 poll-interval=0.3s
url=$(module_url)
ok "after a purge and a reload the counter keeps the purged jobs' seconds ($before)" \
    comes_to flux_queue_allocated_core_seconds_total "$before" near
ok "so does the user's" comes_to "flux_user_allocated_core_seconds_total{user=\"$me\"}" "$before" near
flux module remove prometheus
# A saved value that cannot be read is logged, and the counters are those
# of the jobs the job manager keeps.
flux kvs put prometheus.allocated-seconds='{"version":99}'
flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 poll-interval=0.3s
url=$(module_url)
ok "a saved value of another version is logged by name" \
    sh -c 'for i in $(seq 40); do flux dmesg | grep -q "prometheus.allocated-seconds cannot be read (version 99" && exit 0; sleep 0.25; done; exit 1'
flux module remove prometheus

# An instance restarted on the same state directory: the job manager
# reloads its jobs, inactive ones included, and the counters with them.
statedir=$(mktemp -d)
restarted() {
    FLUX_URI= "$(find_flux)" start -Sstatedir="$statedir" bash -c "$1"
}
first=$(restarted 'flux run -n2 sleep 1 >/dev/null; flux jobs -a -no "{ncores} {runtime}" | awk "{ s += \$1 * \$2 } END { printf \"%.3f\", s }"')
second=$(restarted "
    flux run -n1 sleep 1 >/dev/null
    flux module load --name=prometheus '$MODULE_SO' listen=127.0.0.1:0 poll-interval=0.3s
    url=\$(flux module stats prometheus | jq -r .url)
    for _ in \$(seq 40); do
        v=\$(curl -sf \"\$url\" | awk '\$1 == \"flux_queue_allocated_core_seconds_total\" { print \$2 }')
        [ -n \"\$v\" ] && break
        sleep 0.25
    done
    echo \"\$v \$(flux jobs -a -no '{ncores} {runtime}' | awk '{ s += \$1 * \$2 } END { printf \"%.3f\", s }') \$(flux jobs -a -n | wc -l)\"
    flux module remove prometheus")
read -r counter cli njobs <<<"$second"
is "$njobs" 2 "the restarted instance kept the job of its first run"
ok "after a restart the counter counts the first run's job too ($counter, flux jobs -a $cli; first run $first)" \
    near "$counter" "$cli"
ok "and that is more than the second run's job alone" \
    awk -v c="$counter" -v f="$first" 'BEGIN { exit !(c > f) }'
rm -rf "$statedir"

# Restarted after its jobs were purged: what they ended with was saved in
# the KVS, which the state directory keeps.
statedir=$(mktemp -d)
first=$(restarted "
    flux module load --name=prometheus '$MODULE_SO' listen=127.0.0.1:0 poll-interval=0.3s
    url=\$(flux module stats prometheus | jq -r .url)
    flux run -n2 sleep 1 >/dev/null
    cli=\$(flux jobs -a -no '{ncores} {runtime}' | awk '{ s += \$1 * \$2 } END { printf \"%.3f\", s }')
    for _ in \$(seq 40); do
        v=\$(curl -sf \"\$url\" | awk '\$1 == \"flux_queue_allocated_core_seconds_total\" { print \$2 }')
        awk -v v=\"\$v\" -v c=\"\$cli\" 'BEGIN { exit !(v > 0 && v >= c * 0.995) }' && break
        sleep 0.25
    done
    flux job purge --force --num-limit=0 >/dev/null
    # Removed as rc3 removes it, which saves the sums.
    flux module remove prometheus
    echo \"\$cli\"")
second=$(restarted "
    flux module load --name=prometheus '$MODULE_SO' listen=127.0.0.1:0 poll-interval=0.3s
    url=\$(flux module stats prometheus | jq -r .url)
    for _ in \$(seq 40); do
        v=\$(curl -sf \"\$url\" | awk '\$1 == \"flux_queue_allocated_core_seconds_total\" { print \$2 }')
        [ -n \"\$v\" ] && awk -v v=\"\$v\" 'BEGIN { exit !(v > 0) }' && break
        sleep 0.25
    done
    echo \"\$v \$(flux jobs -a -n | wc -l)\"
    flux module remove prometheus")
read -r counter njobs <<<"$second"
is "$njobs" 0 "the instance restarted after the purge has no inactive job"
ok "yet its counter counts the purged job ($counter, flux jobs -a before the purge $first)" \
    near "$counter" "$first"
rm -rf "$statedir"

# GPU-seconds: an instance whose one node has 2 GPUs (configured, not
# verified), and a job of one GPU: its R's GPUs times its runtime.
gpuconf=$(mktemp -d)
cat >"$gpuconf/gpus.toml" <<'TOML'
[resource]
noverify = true
[[resource.config]]
hosts = "node0"
cores = "0-1"
gpus = "0-1"
TOML
gpus=$(FLUX_URI= "$(find_flux)" start --test-size=1 --test-hosts=node0 --config-path="$gpuconf/gpus.toml" bash -c "
    flux run -n1 -g1 sleep 1
    flux module load --name=prometheus '$MODULE_SO' listen=127.0.0.1:0 poll-interval=0.3s
    url=\$(flux module stats prometheus | jq -r .url)
    for _ in \$(seq 40); do
        v=\$(curl -sf \"\$url\" | awk '\$1 == \"flux_queue_allocated_gpu_seconds_total\" { print \$2 }')
        [ -n \"\$v\" ] && break
        sleep 0.25
    done
    id=\$(flux jobs -a -no '{id}' | head -1)
    echo \"\$v \$(flux job info \$id R | jq '[.execution.R_lite[].children.gpu // empty] | length') \$(flux jobs -no '{runtime}' \$id)\"
    flux module remove prometheus")
read -r counter ngpus runtime <<<"$gpus"
ok "a job of one GPU counts its R's GPUs times its runtime ($counter, $ngpus x $runtime)" \
    near "$counter" "$(awk -v n="$ngpus" -v r="$runtime" 'BEGIN { print n * r }')"
rm -rf "$gpuconf"
done_testing
