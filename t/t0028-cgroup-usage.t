#!/bin/bash
# Job shells in cgroups of their own, as under sdexec: each shell runs in a
# cgroup named as sdexec names its systemd unit (shell-RANK-ID.service),
# made here by a wrapper around flux-shell, on cgroup v2 and, on a hybrid
# system, in the cgroup v1 memory hierarchy too. The module on each rank
# finds the cgroup from the job's tasks and samples it; jobstats names it;
# the usage record at the end comes from it, and its CPU time and peak
# memory agree with what the tasks themselves measured (getrusage).
. "$(dirname "$0")/lib.sh"

cgroup_mounts
TOP=flux-prometheus-t0028-$$
if [ "$(id -u)" != 0 ] || [ -z "$V2" ] || ! mkdir "$V2/$TOP" 2>/dev/null; then
    echo "1..0 # SKIP needs root and a writable cgroup v2 hierarchy"
    exit 0
fi
rmdir "$V2/$TOP"
export V2 MEM TOP
run_inside_flux 2

export FLUX_EXEC_PATH_PREPEND=$REPO/target/release
plan 9

dir=$(mktemp -d)
cleanup() {
    for top in "$V2" "$MEM"; do
        [ -n "$top" ] && [ -d "$top/$TOP" ] && find "$top/$TOP" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null
        [ -n "$top" ] && rmdir "$top/$TOP" 2>/dev/null
    done
    rm -rf "$dir"
}
trap cleanup EXIT
shell_plugin_rc "$dir/rc.lua"

# The job shell, in a unit's cgroup of its own.
cat >"$dir/shell-in-unit" <<EOF
#!/bin/bash
id=\${@: -1}
unit=shell-\$(flux getattr rank)-\$(flux job id --to=f58plain "\$id").service
for top in "$V2" "$MEM"; do
    [ -n "\$top" ] || continue
    mkdir -p "\$top/$TOP/\$unit" && echo \$\$ >"\$top/$TOP/\$unit/cgroup.procs"
done
exec $(flux config builtin shell_path) "\$@"
EOF
chmod +x "$dir/shell-in-unit"

burn_task "$dir/task.py"

flux exec -r all flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 sample-interval=1s

id=$(flux submit -N2 -n4 -o userrc="$dir/rc.lua" -o cpu-affinity=off \
    --setattr=system.exec.job_shell="$dir/shell-in-unit" python3 "$dir/task.py")
flux job wait-event -t 60 "$id" start >/dev/null
f58plain=$(flux job id --to=f58plain "$id")

live=$(jobstats_from_cgroups "$id")
is "$(jq -r '[.nodes[].source] | unique | join(",")' <<<"$live")" cgroup \
    "the module samples each node's shell cgroup"
is "$(jq -r '.nodes | sort_by(.rank) | map(.cgroup) | join(" ")' <<<"$live")" \
    "$V2/$TOP/shell-0-$f58plain.service $V2/$TOP/shell-1-$f58plain.service" \
    "and names the cgroup the shell runs in, on each rank"
ok "jobstats says where each node was measured" \
    grep -q "rank 1 measured from cgroup $V2/$TOP/shell-1-$f58plain.service" <<<"$(flux prometheus jobstats "$id")"

flux job attach "$id" >"$dir/tasks.out"
flux job wait-event -t 60 "$id" clean >/dev/null
record=$(flux job eventlog -p exec -f json "$id" | jq -c 'select(.name == "prometheus.usage") | .context')
diag "$record"
is "$(jq -r '[.nodes[].source] | unique | join(",")' <<<"$record")" cgroup \
    "the usage record comes from each node's cgroup"

# What the tasks measured of themselves, per node (ranks 0-1 ran on broker
# rank 0, 2-3 on broker rank 1: flux assigns tasks to nodes in order).
cpu_tasks=$(awk '{ s += $2 } END { print s }' "$dir/tasks.out")
cpu_record=$(jq '[.nodes[] | .user_seconds + .system_seconds] | add' <<<"$record")
# The cgroups hold the two job shells as well as the tasks: their own CPU
# (starting, Lua, plugins, output) is counted with the tasks'. It is about
# 0.25 s here on a quiet machine and was 0.43 s on a loaded one, so the
# record is the tasks' own plus at most 5 %, and never less than theirs.
ok "its CPU time ($cpu_record s) is the tasks' own ($cpu_tasks s) and the shells' (at most 5 % more)" \
    awk -v a="$cpu_record" -v b="$cpu_tasks" 'BEGIN { exit !(b > 15.9 && a >= 0.995 * b && a <= 1.05 * b) }'
peaks_within_5_percent "$record" "$dir/tasks.out"
is "$(jq '[.nodes[].oom_kills] | add' <<<"$record")" 0 "and it says no task was killed for memory"

flux exec -r all flux module remove prometheus
is "$(find "$V2/$TOP" -mindepth 1 -maxdepth 1 -type d -name 'shell-*.service' | wc -l)" 2 "the shells ran in the two cgroups the test made"
done_testing
