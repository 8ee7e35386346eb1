#!/bin/bash
# Cgroups of the module's making (job-cgroups = true): job shells that
# have no cgroup of their own (no sdexec) are moved, with their tasks, into
# one the module on their rank makes under the broker's own cgroup, named
# prometheus-shell-RANK-ID, on cgroup v2 and, on a hybrid system, in the
# cgroup v1 memory hierarchy too. The module samples the job from it,
# counting the CPU time the tasks used before the move; the record at the
# end keeps the CPU time the shell reaped and takes the cgroup's memory
# peak; the cgroup goes when the job has ended. Without the key nothing is
# moved.
. "$(dirname "$0")/lib.sh"

if [ ! -x /usr/bin/time ]; then
    echo "1..0 # SKIP /usr/bin/time is not installed (Debian package time)"
    exit 0
fi
cgroup_mounts
if [ "$(id -u)" != 0 ] || [ -z "$V2" ] || ! [ -w "$V2$(awk -F: '$1 == 0 { print $3 }' /proc/self/cgroup)" ]; then
    echo "1..0 # SKIP needs root and a writable cgroup v2 hierarchy"
    exit 0
fi
export V2 MEM
if [ -z "${FLUX_PROMETHEUS_TEST_INNER:-}" ]; then
    T_CONFDIR=$(mktemp -d)
    : >"$T_CONFDIR/prometheus.toml"
    export T_CONFDIR
fi
run_inside_flux 2 --config-path="${T_CONFDIR:-}"

export FLUX_EXEC_PATH_PREPEND=$REPO/target/release
plan 13

dir=$(mktemp -d)
trap 'rm -rf "$dir" "$T_CONFDIR"' EXIT
shell_plugin_rc "$dir/rc.lua"
# The broker's own cgroups, under which the module makes the jobs'.
broker_v2=${V2%/}$(awk -F: '$1 == 0 { print $3 }' "/proc/$(flux getattr broker.pid)/cgroup")
broker_v2=${broker_v2%/}
broker_mem=
[ -n "$MEM" ] && broker_mem=$MEM$(awk -F: '$2 ~ /(^|,)memory(,|$)/ { print $3 }' "/proc/$(flux getattr broker.pid)/cgroup")
broker_mem=${broker_mem%/}
diag "cgroup v2 parent $broker_v2${broker_mem:+, v1 memory parent $broker_mem}"

burn_task "$dir/task.py"

# Without the key: nothing is moved.
flux exec -r all flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 sample-interval=1s
id=$(flux submit -N1 -n1 -o userrc="$dir/rc.lua" sh -c 'sleep 2; cat /proc/self/cgroup')
flux job attach "$id" >"$dir/plain.out"
is "$(awk -F: '$1 == 0 { print $3 }' "$dir/plain.out")" "$(awk -F: '$1 == 0 { print $3 }' "/proc/$(flux getattr broker.pid)/cgroup")" \
    "without job-cgroups a job runs in the broker's cgroup"

# Turned on by the broker config, on every rank.
printf '[prometheus]\njob-cgroups = true\n' >"$T_CONFDIR/prometheus.toml"
flux config reload
# /usr/bin/time reports each task's CPU time as the shell reaps it, the
# task's own exit included.
id=$(flux submit -N2 -n4 -o userrc="$dir/rc.lua" -o cpu-affinity=off \
    /usr/bin/time -f "time %U %S" python3 "$dir/task.py")
flux job wait-event -t 60 "$id" start >/dev/null
dec=$(flux job id --to=dec "$id")

live=$(jobstats_from_cgroups "$id")
is "$(jq -r '[.nodes[].source] | unique | join(",")' <<<"$live")" cgroup \
    "the module samples each node's job from the cgroup it made"
is "$(jq -r '.nodes | sort_by(.rank) | map(.cgroup) | join(" ")' <<<"$live")" \
    "$broker_v2/prometheus-shell-0-$dec $broker_v2/prometheus-shell-1-$dec" \
    "one cgroup a rank, under the broker's own"
is "$(flux module stats prometheus | jq .sampler.made_cgroup_jobs)" 1 "rank 0's module stats count the job in a cgroup it made"
if [ -n "$broker_mem" ]; then
    ok "and on this hybrid system, in the v1 memory hierarchy too" \
        test -d "$broker_mem/prometheus-shell-0-$dec"
else
    ok "# SKIP no cgroup v1 memory hierarchy here" true
fi
# The shell was moved too: the cgroup holds it and the tasks.
shell_pid=$(pgrep -f "flux-shell.* $dec\$" | head -1)
ok "the job shell is in the cgroup with its tasks" \
    grep -q "^0::.*/prometheus-shell-[01]-$dec\$" "/proc/$shell_pid/cgroup"
# CPU time in the live samples counts from the tasks' start: the last
# sample before the job ends (its workers sleep 3 s after their burn) has
# the tasks' CPU time.
flux job attach "$id" >"$dir/tasks.out" 2>"$dir/time.out" &
attach=$!
cpu_live=0
while kill -0 "$attach" 2>/dev/null; do
    # Live figures of both nodes only: once the job has ended, jobstats
    # reports its usage record instead, which has no cpu_seconds.
    seen=$(flux prometheus jobstats --json "$id" 2>/dev/null |
        jq '[.nodes[].cpu_seconds // empty] | select(length == 2) | add') &&
        [ -n "$seen" ] && cpu_live=$seen
    sleep 0.5
done
wait "$attach"
flux job wait-event -t 60 "$id" clean >/dev/null
cpu_tasks=$(awk '{ s += $2 } END { print s }' "$dir/tasks.out")
ok "the live CPU time ($cpu_live s) is the tasks' ($cpu_tasks s) and their shells' (at most 5 % more)" \
    awk -v a="$cpu_live" -v b="$cpu_tasks" 'BEGIN { exit !(b > 15.9 && a >= 0.98 * b && a <= 1.05 * b) }'
is "$(awk '{ print $4 }' "$dir/tasks.out" | sed 's|.*/||' | sort -u | tr '\n' ' ')" \
    "prometheus-shell-0-$dec prometheus-shell-1-$dec " "every task and worker ran in its node's cgroup"
record=$(flux job eventlog -p exec -f json "$id" | jq -c 'select(.name == "prometheus.usage") | .context')
diag "$record"
cpu_record=$(jq '[.nodes[] | .user_seconds + .system_seconds] | add' <<<"$record")
cpu_reaped=$(awk '$1 == "time" { s += $2 + $3 } END { print s }' "$dir/time.out")
ok "the record's CPU time ($cpu_record s) is the tasks' as getrusage has them ($cpu_reaped s) within 2 %" \
    awk -v a="$cpu_record" -v b="$cpu_reaped" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(b > 15.9 && d <= 0.02 * b) }'
peaks_within_5_percent "$record" "$dir/tasks.out"

# The cgroups go once the job has ended (at a look after its shell exits).
for _ in $(seq 120); do
    [ -z "$(find "$broker_v2" ${broker_mem:+"$broker_mem"} -maxdepth 1 -name "prometheus-shell-*-$dec")" ] && break
    sleep 0.25
done
left=$(find "$broker_v2" ${broker_mem:+"$broker_mem"} -maxdepth 1 -name "prometheus-shell-*-$dec")
is "$(printf '%s' "$left" | grep -c .)" 0 "the job's cgroups are removed when it has ended"
# What kept one, if any: the processes still in it.
for cg in $left; do
    diag "$cg: $(tr '\n' ' ' <"$cg/cgroup.procs" 2>/dev/null)"
    while read -r pid; do diag "$(ps -o pid=,ppid=,user=,args= -p "$pid")"; done <"$cg/cgroup.procs"
done
flux exec -r all flux module remove prometheus

! flux module load --name=prometheus "$MODULE_SO" job-cgroups=maybe 2>/dev/null
ok "a bad value is refused, naming the key and the value" \
    grep -q "job-cgroups=maybe: expected true or false" <<<"$(flux dmesg)"
done_testing
