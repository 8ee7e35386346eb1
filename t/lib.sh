# Shared helpers for the TAP tests in t/ (sourced, bash).
#
# Each test re-executes itself inside a real `flux start` instance; where
# flux-core is not installed it prints one SKIP line and exits 0.

T_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$T_DIR/.." && pwd)
MODULE_SO=${FLUX_PROMETHEUS_SO:-$REPO/target/release/libflux_prometheus.so}
# flux-core in a prefix of its own: pkg-config finds it as flux does.
. "$REPO/scripts/flux-core-env"

find_flux() {
    if command -v flux >/dev/null 2>&1; then
        command -v flux
        return 0
    fi
    local prefix
    prefix=$(pkg-config --variable=prefix flux-core 2>/dev/null) || return 1
    [ -x "$prefix/bin/flux" ] && echo "$prefix/bin/flux"
}

# Copies t/etc/NAME into a new directory (T_CONFDIR, exported) for a test
# whose instance gets it as --config-path: flux config reload re-reads the
# config path, so the test must be able to rewrite it. Outside the instance
# only; the test removes T_CONFDIR when it ends.
writable_config() {
    if [ -z "${FLUX_PROMETHEUS_TEST_INNER:-}" ] && find_flux >/dev/null; then
        T_CONFDIR=$(mktemp -d)
        cp "$T_DIR/etc/$1" "$T_CONFDIR/"
        export T_CONFDIR
    fi
}

# Runs the rest of the calling test inside an instance of SIZE brokers.
# Extra arguments go to flux start.
run_inside_flux() {
    local size=$1
    shift
    if [ -n "${FLUX_URI:-}" ] && [ -n "${FLUX_PROMETHEUS_TEST_INNER:-}" ]; then
        return 0
    fi
    local flux
    if ! flux=$(find_flux); then
        echo "1..0 # SKIP flux-core is not installed (no flux on PATH or via pkg-config)"
        exit 0
    fi
    if [ ! -f "$MODULE_SO" ]; then
        (cd "$REPO" && cargo build --release --quiet) >&2 || { echo "Bail out! cargo build --release failed"; exit 1; }
    fi
    export FLUX_PROMETHEUS_TEST_INNER=1
    # make check runs the suite once per installed scheduler, naming it in
    # FLUX_PROMETHEUS_SCHED (a modules.alternatives.sched value).
    if [ -n "${FLUX_PROMETHEUS_SCHED:-}" ]; then
        if "$flux" start --help 2>&1 | grep -q -- '--conf=VALUE'; then
            set -- --conf=modules.alternatives.sched="$FLUX_PROMETHEUS_SCHED" "$@"
        elif [ "$FLUX_PROMETHEUS_SCHED" != sched-simple ]; then
            # An older flux start (0.78) has no --conf; its default is the
            # scheduler flux-core itself has (sched-simple).
            echo "1..0 # SKIP this flux start has no --conf to choose $FLUX_PROMETHEUS_SCHED"
            exit 0
        fi
    fi
    if [ -z "${LOST_BROKER_OK:-}" ]; then
        exec "$flux" start --test-size="$size" "$@" bash "$0"
    fi
    # A test that takes a broker down on purpose: flux start then exits
    # non-zero whatever happened, so the test's own verdict is used, as long
    # as it got to give one.
    export T_VERDICT
    T_VERDICT=$(mktemp)
    "$flux" start --test-size="$size" "$@" bash "$0"
    local rc=$? verdict
    verdict=$(cat "$T_VERDICT")
    rm -f "$T_VERDICT"
    exit "${verdict:-$rc}"
}

# The scheduler's modules in load order: Fluxion's three, or one of
# flux-core's. Tests that restart the scheduler restart whichever is loaded.
SCHED_MODULES="sched-fluxion-resource sched-fluxion-feasibility sched-fluxion-qmanager sched-simple sched-fifo sched-backfill"
loaded_sched_modules() {
    local loaded m
    loaded=$(flux module list | awk 'NR > 1 { print $1 }')
    for m in $SCHED_MODULES; do
        grep -qx "$m" <<<"$loaded" && echo "$m"
    done
}
# The scheduler that provides "sched" now, by module name.
sched_name() { flux module list | awk '$NF ~ /(^|,)sched(,|$)/ { print $1 }'; }
# Removes the loaded scheduler (dependents first) and remembers it.
sched_remove() {
    local m
    SCHED_REMOVED=$(loaded_sched_modules)
    for m in $(tac <<<"$SCHED_REMOVED"); do
        flux module remove "$m" || return 1
    done
}
# Loads what sched_remove removed, through flux modprobe so that the
# modules get their configured arguments.
sched_load() {
    flux modprobe load sched feasibility >/dev/null
}

# Exports what makes flux's modprobe also read DIR (its modprobe.d and
# rc1.d): FLUX_MODPROBE_PATH_APPEND where flux has it. An older flux (0.78)
# reads FLUX_MODPROBE_PATH in addition to its own directories instead, and
# starts instances with modprobe only when FLUX_RC_USE_MODPROBE is set (its
# default is the legacy rc1.d scripts, which etc/rc1.d serves).
modprobe_also_reads() {
    if flux python -c 'import inspect, flux.modprobe, sys; sys.exit("FLUX_MODPROBE_PATH_APPEND" not in inspect.getsource(flux.modprobe))' 2>/dev/null; then
        export FLUX_MODPROBE_PATH_APPEND=$1
    else
        export FLUX_MODPROBE_PATH=$1 FLUX_RC_USE_MODPROBE=t
    fi
}
# A broker config file in DIR that sets the module's listen address (flux
# start --conf is not in every flux); prints the --config-path argument.
listen_config() {
    printf '[prometheus]\nlisten = "%s"\n' "$2" >"$1/listen.toml"
    echo "--config-path=$1/listen.toml"
}

TEST_NO=0
FAILED=0
plan() { echo "1..$1"; }
ok() {
    local desc=$1
    shift
    TEST_NO=$((TEST_NO + 1))
    if "$@"; then
        echo "ok $TEST_NO - $desc"
    else
        echo "not ok $TEST_NO - $desc"
        # prove shows a failing test's stderr even when not verbose
        echo "# failed $TEST_NO: $desc" >&2
        FAILED=$((FAILED + 1))
    fi
}
# A test that cannot run here, and why (TAP's SKIP directive).
skip() {
    TEST_NO=$((TEST_NO + 1))
    echo "ok $TEST_NO - $1 # SKIP $2"
}
is() {
    local got=$1 expected=$2 desc=$3
    TEST_NO=$((TEST_NO + 1))
    if [ "$got" = "$expected" ]; then
        echo "ok $TEST_NO - $desc"
    else
        echo "not ok $TEST_NO - $desc"
        echo "#   got:      '$got'"
        echo "#   expected: '$expected'"
        FAILED=$((FAILED + 1))
    fi
}
diag() { echo "# $*"; }
done_testing() {
    [ -n "${T_VERDICT:-}" ] && echo $((FAILED > 0)) >"$T_VERDICT"
    exit $((FAILED > 0))
}

# The URL the module named $1 (default prometheus) reports.
module_url() { flux module stats "${1:-prometheus}" | jq -r .url; }

scrape() { curl -sf --max-time 5 "$1"; }
# The value of series $2 (its exact name{labels}) in a fresh scrape of
# URL $1; "absent" where there is none.
value_at() { scrape "$1" | sample "$2"; }
# Waits up to 30 s for series $2 of URL $1 to read $3.
wait_for_value() {
    local _
    for _ in $(seq 120); do
        [ "$(value_at "$1" "$2")" = "$3" ] && return 0
        sleep 0.25
    done
    return 1
}
# Writes the user rc file $1, which loads the prometheus job-shell plugin
# (jobs take it with -o userrc=$1), building the plugin and the flux
# prometheus command first where they are missing.
shell_plugin_rc() {
    local plugin=${FLUX_PROMETHEUS_SHELL_SO:-$REPO/target/release/libflux_prometheus_shell.so}
    if [ ! -f "$plugin" ] || [ ! -x "$REPO/target/release/flux-prometheus" ]; then
        (cd "$REPO" && cargo build --release --quiet) >&2
    fi
    printf 'plugin.load { file = "%s" }\n' "$plugin" >"$1"
}
scrapes() { curl -sf --max-time 5 -o /dev/null "$1"; }

# Value of one sample (exact name{labels}) in exposition text on stdin.
sample() { awk -v k="$1" '$1 == k { print $2; found=1 } END { if (!found) print "absent" }'; }

# The `flux jobs --stats-only` line computed from a scrape (stdin), for the
# whole instance or for queue $1.
stats_line_from_scrape() {
    awk -v q="${1:-}" '
        function key(name, lab) { return q == "" ? name "{" lab "}" : "flux_queue_" substr(name, 6) "{queue=\"" q "\"," lab "}" }
        { v[$1] = $2 }
        END {
            a = key("flux_jobs", "state=\"")
            i = key("flux_jobs_inactive", "result=\"")
            sub(/\}$/, "", a); sub(/\}$/, "", i)
            p = (q == "") ? "flux_jobs_purged_total" : "flux_queue_jobs_purged_total{queue=\"" q "\"}"
            run = v[a "run\"}"] + v[a "cleanup\"}"]
            pend = v[a "depend\"}"] + v[a "priority\"}"] + v[a "sched\"}"]
            fail = v[i "failed\"}"] + v[i "canceled\"}"] + v[i "timeout\"}"]
            printf "%d running, %d completed, %d failed, %d pending, %d inactive purged\n", run, v[i "completed\"}"], fail, pend, v[p]
        }'
}

# Job series only, to compare two scrapes.
job_series() { grep -E '^flux_(queue_)?jobs' || true; }

# Compares a scrape's job counts with `flux jobs --stats-only -a [-q Q]`,
# between two scrapes that agree with each other; retries while jobs move.
# Prints "scraped | cli" on the last attempt.
agree_with_cli() {
    local url=$1 queue=${2:-} tries=${3:-50} a b cli qopt=()
    [ -n "$queue" ] && qopt=(-q "$queue")
    for _ in $(seq "$tries"); do
        a=$(scrape "$url")
        cli=$(flux jobs --stats-only -a "${qopt[@]}")
        b=$(scrape "$url")
        if [ "$(job_series <<<"$a")" = "$(job_series <<<"$b")" ] &&
            [ "$(stats_line_from_scrape "$queue" <<<"$a")" = "$cli" ]; then
            echo "$cli"
            return 0
        fi
        sleep 0.2
    done
    echo "scraped: $(stats_line_from_scrape "$queue" <<<"$a") | cli: $cli"
    return 1
}

# Rows "state nnodes ncores ngpus" from a scrape (stdin), for queue $1 or all.
rows_from_scrape() {
    awk -v q="${1:-}" '
        { v[$1] = $2 }
        END {
            split("free allocated down", st, " ")
            for (i = 1; i <= 3; i++) {
                s = st[i]
                if (q == "") { n = v["flux_resource_nodes{state=\"" s "\"}"]; c = v["flux_resource_cores{state=\"" s "\"}"]; g = v["flux_resource_gpus{state=\"" s "\"}"] }
                else { l = "{queue=\"" q "\",state=\"" s "\"}"; n = v["flux_queue_resource_nodes" l]; c = v["flux_queue_resource_cores" l]; g = v["flux_queue_resource_gpus" l] }
                print s, n + 0, c + 0, g + 0
            }
        }'
}
# The same rows from flux resource list (states it leaves out are zero).
rows_from_cli() {
    local qopt=()
    [ -n "${1:-}" ] && qopt=(-q "$1")
    flux resource list "${qopt[@]}" -no '{state} {nnodes} {ncores} {ngpus}' |
        awk '{ n[$1] += $2; c[$1] += $3; g[$1] += $4 }
             END { split("free allocated down", st, " "); for (i = 1; i <= 3; i++) print st[i], n[st[i]] + 0, c[st[i]] + 0, g[st[i]] + 0 }'
}
resource_series() { grep -E '^flux_(queue_)?resource_' || true; }
# Resource rows of queue $1 (or the instance) equal flux resource list,
# compared between two scrapes of $url that agree; retries while things move.
resources_agree() {
    local a b cli
    for _ in $(seq "${AGREE_TRIES:-60}"); do
        a=$(scrape "$url"); cli=$(rows_from_cli "$1"); b=$(scrape "$url")
        if [ "$(resource_series <<<"$a")" = "$(resource_series <<<"$b")" ] &&
            [ "$(rows_from_scrape "$1" <<<"$a")" = "$cli" ]; then
            return 0
        fi
        sleep 0.2
    done
    diag "scraped: $(rows_from_scrape "$1" <<<"$a" | tr '\n' ';') cli: $(tr '\n' ';' <<<"$cli")"
    return 1
}
# Node state counts equal flux resource status.
status_agrees() {
    local s cli want got
    for _ in $(seq "${AGREE_TRIES:-60}"); do
        s=$(scrape "$url")
        # -s all: flux's own state sets, which overlap (a node can be
        # allocated, in housekeeping and draining at once). A node offline
        # is counted once, under the one of avail, exclude, drained,
        # draining or torpid it is in.
        cli=$(flux resource status -s all -no '{state} {nnodes}')
        want=$(awk '{ st = $1; off = sub(/\*$/, "", st); n[st] += $2
                      if (off && st ~ /^(avail|exclude|drained|draining|torpid)$/) o += $2 }
                    END { printf "avail=%d offline=%d drained=%d draining=%d excluded=%d torpid=%d allocated=%d housekeeping=%d", n["avail"], o, n["drained"], n["draining"], n["exclude"], n["torpid"], n["allocated"], n["housekeeping"] }' <<<"$cli")
        got=$(awk '/^flux_resource_status_nodes/ { split($1, a, "\""); v[a[2]] = $2 }
                   END { printf "avail=%d offline=%d drained=%d draining=%d excluded=%d torpid=%d allocated=%d housekeeping=%d", v["avail"], v["offline"], v["drained"], v["draining"], v["excluded"], v["torpid"], v["allocated"], v["housekeeping"] }' <<<"$s")
        [ "$want" = "$got" ] && return 0
        sleep 0.2
    done
    diag "scraped $got; flux resource status -s all: $want"
    return 1
}
# flux_queue_enabled/started equal flux queue list, queue for queue: a
# queue missing from either side, or extra in the scrape, is a mismatch.
queues_agree() {
    local s want got
    for _ in $(seq "${AGREE_TRIES:-60}"); do
        s=$(scrape "$url")
        want=$(flux queue list -no '{queue} {enabled} {started}' | sort | tr '\n' ';')
        got=$(awk '/^flux_queue_(enabled|started)\{/ {
                       split($1, a, "\""); k = (index($1, "enabled") ? "e" : "s")
                       v[a[2], k] = ($2 == 1 ? "✔" : "✗"); q[a[2]] = 1 }
                   END { for (n in q) print n, v[n, "e"], v[n, "s"] }' <<<"$s" | sort | tr '\n' ';')
        [ "$want" = "$got" ] && return 0
        sleep 0.2
    done
    diag "scraped $got; flux queue list: $want"
    return 1
}

# The cgroup v2 mount (V2) and, on a hybrid system, the cgroup v1 memory
# one (MEM), as /proc/self/mountinfo has them.
cgroup_mounts() {
    local mount_of='{ split($0, s, " - "); split(s[2], f, " ") }
        f[1] == t && (o == "" || ("," f[3] ",") ~ ("," o ",")) { split(s[1], m, " "); print m[5]; exit }'
    V2=$(awk -v t=cgroup2 -v o= "$mount_of" /proc/self/mountinfo)
    MEM=$(awk -v t=cgroup -v o=memory "$mount_of" /proc/self/mountinfo)
}

# Writes the task $1 of the cgroup tests: its worker burns 4 s of CPU, the
# first of each node's holds 300 MiB, and then it waits, so that the
# module samples it. The task waits for its worker and prints its rank,
# what the two used as getrusage says of them (the worker's exit
# included), the worker's peak memory, and the task's cgroup v2. Only the
# task's own exit is missing from the CPU time: tens of milliseconds
# here, which is why the workers burn seconds.
burn_task() {
    cat >"$1" <<'EOF'
import os, resource, time
pid = os.fork()
if pid == 0:
    hold = bytearray(300 << 20) if os.environ["FLUX_TASK_LOCAL_ID"] == "0" else b""
    for i in range(0, len(hold), 4096):
        hold[i] = 1
    def cpu():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime
    while cpu() < 4:
        pass
    time.sleep(3)
    os._exit(0)
_, _, worker = os.wait4(pid, 0)
me = resource.getrusage(resource.RUSAGE_SELF)
cpu = me.ru_utime + me.ru_stime + worker.ru_utime + worker.ru_stime
v2 = [l.split(":", 2)[2].strip() for l in open("/proc/self/cgroup") if l.startswith("0::")][0]
print(os.environ["FLUX_TASK_RANK"], cpu, worker.ru_maxrss * 1024, v2, flush=True)
EOF
}

# Checks each of the two ranks' peak memory in the usage record $1 against
# what its two tasks printed in $2 (burn_task: ranks 0-1 ran on broker
# rank 0, 2-3 on broker rank 1), within 5 %.
peaks_within_5_percent() {
    local rank rss peak
    for rank in 0 1; do
        rss=$(awk -v lo=$((rank * 2)) '$1 == lo || $1 == lo + 1 { s += $3 } END { print s }' "$2")
        peak=$(jq --argjson r "$rank" '.nodes[] | select(.rank == $r) | .peak_memory_bytes' <<<"$1")
        ok "rank $rank's peak memory ($peak) is its tasks' ($rss) within 5 %" \
            awk -v a="$peak" -v b="$rss" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(b > 300 * 2^20 && d <= 0.05 * b) }'
    done
}

# Prints `flux prometheus jobstats --json` of running job $1 once both of
# its nodes are measured from cgroups (or what it last said, after 10 s),
# and shows the report as a diagnostic.
jobstats_from_cgroups() {
    local live=
    for _ in $(seq 40); do
        live=$(flux prometheus jobstats --json "$1" 2>/dev/null) &&
            [ "$(jq '[.nodes[] | select(.source == "cgroup")] | length' <<<"$live")" = 2 ] && break
        sleep 0.25
    done
    diag "$(flux prometheus jobstats "$1" 2>&1)" >&2
    echo "$live"
}
