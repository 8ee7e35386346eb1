#!/bin/bash
# A web-config's rate_limit as a real Prometheus meets it, as it meets
# node_exporter's: scrapes within the burst succeed, the next ones fail
# with the 429 the toolkit answers (up is 0, and the target's last error
# names the status), and a rate that allows every scrape interval keeps up
# at 1 throughout.
. "$(dirname "$0")/lib.sh"
if ! command -v prometheus >/dev/null; then
    echo "1..0 # SKIP prometheus is not installed (Debian package prometheus)"
    exit 0
fi
run_inside_flux 1

plan 5

dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$dir"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Starts Prometheus scraping $1 (HOST:PORT) every second; its URL in prom.
# Not in a command substitution: its pid must reach pids, for cleanup to
# stop it.
start_prometheus() {
    local port
    port=$(free_port)
    mkdir -p "$dir/data-$port"
    printf 'global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: flux\n    static_configs:\n      - targets: ["%s"]\n' \
        "$1" >"$dir/prometheus-$port.yml"
    prometheus --config.file="$dir/prometheus-$port.yml" --storage.tsdb.path="$dir/data-$port" \
        --web.listen-address="127.0.0.1:$port" >"$dir/prometheus-$port.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1 && break
        sleep 0.2
    done
    prom="http://127.0.0.1:$port"
}
# The target's health and last error, as Prometheus's targets API gives them.
target() { curl -sf "$1/api/v1/targets" | jq -r '.data.activeTargets[0] | "\(.health) \(.lastError)"'; }
# Waits up to 20 s for the target's health to be $2.
wait_health() {
    for _ in $(seq 40); do
        [ "$(target "$1" | cut -d' ' -f1)" = "$2" ] && return 0
        sleep 0.5
    done
    return 1
}
hostport() { module_url | sed 's|^http://||; s|/metrics$||'; }

# Five scrapes, then one an hour: Prometheus scrapes every second.
printf 'rate_limit:\n  interval: 1h\n  burst: 5\n' >"$dir/tight.yml"
flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 web-config="$dir/tight.yml"
start_prometheus "$(hostport)"
ok "within the burst, the target is up" wait_health "$prom" up
ok "past it, the target goes down" wait_health "$prom" down
last=$(target "$prom")
diag "$last"
ok "and its last error is the 429 (Too Many Requests)" grep -q "429 Too Many Requests" <<<"$last"
flux module remove prometheus
kill "${pids[-1]}" && wait "${pids[-1]}" 2>/dev/null

# Ten a second, with a burst of 5: a scrape a second never runs out.
printf 'rate_limit:\n  interval: 100ms\n  burst: 5\n' >"$dir/loose.yml"
flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 web-config="$dir/loose.yml"
start_prometheus "$(hostport)"
ok "a limit above the scrape rate: the target is up" wait_health "$prom" up
sleep 5
is "$(curl -sf "$prom/api/v1/query" --data-urlencode 'query=min_over_time(up[5s])' | jq -r '.data.result[0].value[1]')" 1 \
    "and stays up for every scrape"
flux module remove prometheus
done_testing
