#!/bin/bash
# `flux prometheus` against a real Prometheus (Debian's, on 127.0.0.1 with a
# temporary data directory) and a real instance: healthy, ready, reload (and
# the explanation when the lifecycle API is off), status, scrape-config fed to
# Prometheus (which then scrapes the module: up is 1 and a job count equals
# flux jobs), targets across nested instances, and one-line errors.
. "$(dirname "$0")/lib.sh"
if ! command -v prometheus >/dev/null; then
    echo "1..0 # SKIP prometheus is not installed (Debian package prometheus)"
    exit 0
fi
run_inside_flux 1
[ -x "$REPO/target/release/flux-prometheus" ] || (cd "$REPO" && cargo build --release --quiet) >&2
export FLUX_EXEC_PATH_PREPEND=$REPO/target/release

plan 22

dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$dir"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Starts Prometheus with config $1 on a free port; extra arguments follow.
start_prometheus() {
    local config=$1 port
    shift
    port=$(free_port)
    mkdir -p "$dir/data-$port"
    prometheus --config.file="$config" --storage.tsdb.path="$dir/data-$port" \
        --web.listen-address="127.0.0.1:$port" "$@" >"$dir/prometheus-$port.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1 && break
        sleep 0.2
    done
    echo "http://127.0.0.1:$port"
}
# One instant query's single value (empty when there is none).
query() { curl -sf "$1/api/v1/query" --data-urlencode "query=$2" | jq -r '.data.result[0].value[1] // empty'; }
# The query's value once it is $3 (waiting up to 30 s for scrapes), else
# the last value seen.
query_until() {
    local v=""
    for _ in $(seq 60); do
        v=$(query "$1" "$2")
        [ "$v" = "$3" ] && break
        sleep 0.5
    done
    echo "$v"
}

# The module asks for basic auth, as the deployment guide has it: the
# shipped web-config example (user prometheus, password change-me).
flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 poll-interval=0.5s \
    web-config="$REPO/etc/prometheus/web-config.yml"
flux submit --wait true >/dev/null
flux submit --cc=1-3 sleep 300 >/dev/null

out=$(flux prometheus status)
ok "status names the module's URL ($(head -1 <<<"$out"))" grep -q "serving $(module_url)" <<<"$out"
ok "status lists each collector as ok" test "$(grep -cE '^  (jobs|resources|queues|broker) +ok' <<<"$out")" = 4

is "$(curl -s -o /dev/null -w '%{http_code}' "$(module_url)")" 401 "the module refuses a scrape without credentials"
flux prometheus scrape-config >"$dir/scrape.yml"
ok "scrape-config has a basic_auth block, since the module has users" grep -q "basic_auth:" "$dir/scrape.yml"
echo change-me >"$dir/password"
sed -i "s|password_file: .*|password_file: $dir/password|" "$dir/scrape.yml"
{ echo "global: {scrape_interval: 1s, evaluation_interval: 1s}"; cat "$dir/scrape.yml"; } >"$dir/prometheus.yml"
ok "scrape-config is a configuration promtool accepts" promtool check config "$dir/prometheus.yml"
url=$(start_prometheus "$dir/prometheus.yml" --web.enable-lifecycle)

ok "healthy: exit 0 for a healthy Prometheus" flux prometheus healthy "$url"
ok "ready: exit 0 for a ready Prometheus" flux prometheus ready "$url"
ok "ready: the URL can come from PROMETHEUS_URL" env PROMETHEUS_URL="$url" flux prometheus ready

is "$(query_until "$url" 'up{job="flux"}' 1)" 1 "Prometheus scrapes the module with that job and basic_auth: up is 1"
running=$(query_until "$url" 'sum(flux_jobs{job="flux",state=~"run|cleanup"})' 3)
is "$running" "$(flux jobs --stats-only | awk '{print $1}')" "Prometheus's running-job count equals flux jobs --stats-only"

# The prometheus-adapter rules in etc/ give an autoscaler the nodes wanted by
# eligible pending jobs: one exclusive one-node job waits behind the sleeps.
flux submit -N1 --exclusive sleep 300 >/dev/null
rule_query() {   # metricsQuery of adapter rule $1, as the adapter expands it
    awk -v n="$1" '/metricsQuery:/ { if (++i == n) { sub(/^ *metricsQuery: */, ""); print } }' \
        "$REPO/etc/prometheus-adapter/flux-rules.yml" | tr -d "'" |
        sed -e 's/<<.Series>>/'"$2"'/' -e 's/<<.LabelMatchers>>/job="flux"/'
}
is "$(query_until "$url" "$(rule_query 1 flux_queue_pending_requested_nodes)" 1)" 1 "the adapter rule for nodes wanted, run by Prometheus, counts the one waiting node"
waited=$(query "$url" "$(rule_query 2 flux_queue_pending_oldest_submit_timestamp_seconds)")
ok "the adapter rule for the oldest wait gives seconds ($waited)" awk -v w="$waited" 'BEGIN { exit !(w >= 0 && w < 300) }'

out=$(flux prometheus reload "$url")
ok "reload: exit 0 and says so ($out)" grep -q "reloaded its configuration" <<<"$out"

nolife=$(start_prometheus "$dir/prometheus.yml")
out=$(flux prometheus reload "$nolife" 2>&1); rc=$?
ok "reload without --web.enable-lifecycle fails" test $rc -ne 0
ok "and explains the flag in one line" test "$(wc -l <<<"$out")" = 1 -a -n "$(grep -- '--web.enable-lifecycle' <<<"$out")"

out=$(flux prometheus healthy http://127.0.0.1:1 2>&1); rc=$?
ok "an unreachable server: one line, non-zero ($out)" test $rc -ne 0 -a "$(wc -l <<<"$out")" = 1
out=$(flux prometheus reload localhost:9090 2>&1); rc=$?
ok "a bad URL: one line naming it, non-zero ($out)" test $rc -ne 0 -a "$(wc -l <<<"$out")" = 1 -a -n "$(grep "'localhost:9090'" <<<"$out")"

# A nested instance running the module, inside a nested instance running it
# (the sleeps go first: each nested instance takes a whole node).
flux cancel --all --quiet
inner="flux module load --name=prometheus $MODULE_SO listen=127.0.0.1:0; sleep 300"
flux submit -N1 flux start bash -c "flux module load --name=prometheus $MODULE_SO listen=127.0.0.1:0;
    flux submit -N1 flux start bash -c '$inner'; sleep 300" >/dev/null
n=0
for _ in $(seq 60); do
    n=$(flux prometheus targets 2>"$dir/targets.err" | jq length)
    [ "$n" = 3 ] && break
    sleep 0.5
done
is "$n" 3 "targets: one target group per instance running the module, nested ones included"
[ "$n" = 3 ] || diag "$(cat "$dir/targets.err")"
levels=$(flux prometheus targets | jq -r '[.[].labels.flux_instance_level] | join(",")')
is "$levels" "0,1,2" "targets: each labelled with its instance level"
ok "targets: the file is valid file_sd for promtool" bash -c "
    flux prometheus targets >'$dir/targets.json' &&
    printf 'scrape_configs:\n  - job_name: f\n    file_sd_configs: [{files: [\"$dir/targets.json\"]}]\n' >'$dir/sd.yml' &&
    promtool check config '$dir/sd.yml' >/dev/null"

flux cancel --all --quiet
flux module remove prometheus
out=$(flux prometheus status 2>&1); rc=$?
ok "status without the module: one line saying so, non-zero ($out)" test $rc -ne 0 -a -n "$(grep 'not loaded' <<<"$out")"

# A reader gone before the output is written (| head, | grep -q): no
# message, and success.
{ sleep 0.5; flux prometheus metrics 2>"$dir/epipe.err"; echo $? >"$dir/epipe.rc"; } | true
ok "a reader that stops early gets no message and exit 0 ($(cat "$dir/epipe.rc"): $(head -c 200 "$dir/epipe.err"))" \
    test "$(cat "$dir/epipe.rc")" = 0 -a ! -s "$dir/epipe.err"
done_testing
