# Shared helpers for the TAP tests in t/ (sourced, bash).
#
# Each test re-executes itself inside a real `flux start` instance; where
# flux-core is not installed it prints one SKIP line and exits 0.

T_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$T_DIR/.." && pwd)
MODULE_SO=${FLUX_PROMETHEUS_SO:-$REPO/target/release/libflux_prometheus.so}

find_flux() {
    if command -v flux >/dev/null 2>&1; then
        command -v flux
        return 0
    fi
    local prefix
    prefix=$(pkg-config --variable=prefix flux-core 2>/dev/null) || return 1
    [ -x "$prefix/bin/flux" ] && echo "$prefix/bin/flux"
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
    exec "$flux" start --test-size="$size" "$@" bash "$0"
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
        FAILED=$((FAILED + 1))
    fi
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
done_testing() { exit $((FAILED > 0)); }

# The URL the module named $1 (default prometheus) reports.
module_url() { flux module stats "${1:-prometheus}" | jq -r .url; }

scrape() { curl -sf --max-time 5 "$1"; }
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
