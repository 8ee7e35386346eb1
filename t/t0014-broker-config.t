#!/bin/bash
# The [prometheus] table of the broker config: read at load, overridden by
# module arguments, and applied by flux config reload without restarting the
# module (listen address rebound, web-config, collector options), while a bad
# new config is refused with a message naming it and the old one stays.
. "$(dirname "$0")/lib.sh"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
if [ -z "${FLUX_PROMETHEUS_TEST_INNER:-}" ]; then
    T_CONF=$(mktemp -d)
    P1=$(free_port); P2=$(free_port)
    printf '[prometheus]\nlisten = "127.0.0.1:%s"\npoll-interval = "0.5s"\n' "$P1" >"$T_CONF/prometheus.toml"
    export T_CONF P1 P2
    trap 'rm -rf "$T_CONF"' EXIT
fi
run_inside_flux 1 --config-path="$T_CONF"

plan 27

write_conf() { printf '[prometheus]\n%s\n' "$1" >"$T_CONF/prometheus.toml"; }
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
wait_series() {   # until scrape of $1 shows a line starting with $2
    for _ in $(seq 50); do scrape "$1" | grep -q "^$2" && return 0; sleep 0.2; done
    return 1
}

flux module load --name=prometheus "$MODULE_SO"
is "$(module_url)" "http://127.0.0.1:$P1/metrics" "listen comes from [prometheus] in the broker config"
flux module remove prometheus
flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0
ok "a module argument overrides the config table" bash -c "[ \"\$(flux module stats prometheus | jq -r .url)\" != http://127.0.0.1:$P1/metrics ]"
flux module remove prometheus

flux module load --name=prometheus "$MODULE_SO"
url=$(module_url)
flux submit --wait true >/dev/null
ok "jobs are counted" wait_series "$url" 'flux_jobs_submitted_total 1'

# Rebinding, with authentication switched on, in one reload.
write_conf "listen = \"127.0.0.1:$P2\"
poll-interval = \"0.5s\"
web-config = \"$REPO/etc/prometheus/web-config.yml\""
ok "flux config reload applies a new listen address and web-config" flux config reload
is "$(module_url)" "http://127.0.0.1:$P2/metrics" "the module reports the new address"
ok "the old address no longer answers" bash -c "! curl -s --max-time 2 http://127.0.0.1:$P1/metrics >/dev/null"
is "$(code "http://127.0.0.1:$P2/metrics")" 401 "the new address asks for credentials"
url="http://127.0.0.1:$P2/metrics"
ok "and serves the same counters to the configured user (not reset)" \
    bash -c "curl -sf -u prometheus:change-me '$url' | grep -q '^flux_jobs_submitted_total 1'"

# A bad config is refused, naming the problem, and the old one stays.
cp "$T_CONF/prometheus.toml" "$T_CONF/good"
write_conf "listen = \"127.0.0.1:$P2\"
pol-interval = \"1s\""
out=$(flux config reload 2>&1) && rc=0 || rc=$?
ok "an unknown key: flux config reload fails" test "$rc" -ne 0
ok "naming the key ($(head -c 150 <<<"$out"))" grep -q "pol-interval" <<<"$out"
# flux cuts a module's reload error at 160 bytes: the suggestion must fit.
ok "with the nearest key suggested, inside what flux shows" \
    grep -q "did you mean 'poll-interval'?" <<<"$out"
write_conf "listen = \"127.0.0.1:$P2\"
web-config = \"$T_CONF/none.yml\""
out=$(flux config reload 2>&1) && rc=0 || rc=$?
ok "a web-config that cannot be read: refused, naming the file" grep -q "$T_CONF/none.yml" <<<"$out"
is "$(code -u prometheus:change-me "$url")" 200 "the old configuration is still in force"
cp "$T_CONF/good" "$T_CONF/prometheus.toml"
flux config reload

# Collector options: the job-flow counters survive a reload that does not
# touch them, and collectors can be switched off.
write_conf "listen = \"127.0.0.1:$P2\"
poll-interval = \"1s\"
web-config = \"$REPO/etc/prometheus/web-config.yml\""
flux config reload
ok "a new poll interval keeps the job-flow counters" \
    bash -c "curl -sf -u prometheus:change-me '$url' | grep -q '^flux_jobs_submitted_total 1'"
write_conf "listen = \"127.0.0.1:$P2\"
collectors = [\"jobs\", \"queues\"]"
flux config reload
s=$(curl -sf "$url")
is "$(grep -c '^flux_prometheus_collector_up' <<<"$s")" 2 "collectors = [jobs, queues]: only those two report"
ok "and the resources series are gone" bash -c "! grep -q '^flux_resource_nodes' <<<\"\$0\"" "$s"
ok "every collector still healthy in flux module stats" bash -c "flux module stats prometheus | jq -e '[.collectors[].healthy] | all and length == 2' >/dev/null"

# Request pacing: beyond max-request-rate requests wait their turn; none is
# refused.
write_conf "listen = \"127.0.0.1:$P2\"
max-request-rate = 5"
flux config reload
is "$(flux module stats prometheus | jq .max_request_rate)" 5 "max-request-rate comes from the table"
t0=$(date +%s.%N)
codes=$(for _ in $(seq 20); do code "$url"; echo; done | sort | uniq -c | awk '{print $2 "x" $1}')
t1=$(date +%s.%N)
is "$codes" "200x20" "20 scrapes in a row at max-request-rate=5: all answered 200"
ok "the 15 beyond the one-second burst waited their turn ($(awk -v a=$t0 -v b=$t1 'BEGIN { printf "%.1f s", b - a }'))" \
    awk -v a=$t0 -v b=$t1 'BEGIN { exit !(b - a >= 2.5) }'
write_conf "max-request-rate = -1"
out=$(flux config reload 2>&1) || true
ok "a negative rate is refused, naming the key" grep -q "max-request-rate=-1" <<<"$out"

# publish-interval: updates within it are rendered together, so a scrape
# is at most that far behind.
write_conf "listen = \"127.0.0.1:$P2\"
poll-interval = \"0.5s\""
flux config reload
# The job-flow collector was restarted by the reloads above: its counter
# starts again from what it sees from now on.
wait_series "$url" 'flux_jobs_submitted_total ' || echo "# no job-flow counter after the reload" >&2
submitted() { scrape "$url" | awk '$1 == "flux_jobs_submitted_total" { print $2 }'; }
before=$(submitted)
write_conf "listen = \"127.0.0.1:$P2\"
poll-interval = \"0.5s\"
publish-interval = \"1h\""
flux config reload
flux submit --wait true >/dev/null
sleep 2
is "$(submitted)" "$before" "publish-interval = 1h: a job submitted since is not rendered yet"
write_conf "listen = \"127.0.0.1:$P2\"
poll-interval = \"0.5s\"
publish-interval = \"200ms\""
flux config reload
ok "publish-interval = 200ms: the waiting render comes at once" \
    wait_series "$url" "flux_jobs_submitted_total $((before + 1))\$"
# busy-publish-interval: while renders are recent, the next one waits
# until that long after the last.
before=$(submitted)
write_conf "listen = \"127.0.0.1:$P2\"
poll-interval = \"0.5s\"
busy-publish-interval = \"1h\""
flux config reload
flux submit --wait true >/dev/null
sleep 2
is "$(submitted)" "$before" "busy-publish-interval = 1h: a job submitted just after a render is not rendered yet"
write_conf "listen = \"127.0.0.1:$P2\"
poll-interval = \"0.5s\"
busy-publish-interval = \"300ms\""
flux config reload
ok "busy-publish-interval = 300ms: the waiting render comes at once" \
    wait_series "$url" "flux_jobs_submitted_total $((before + 1))\$"
write_conf "busy-publish-interval = \"never\""
out=$(flux config reload 2>&1) || true
ok "a bad busy-publish-interval is refused, naming the key" grep -q "busy-publish-interval=never" <<<"$out"
write_conf "publish-interval = \"0s\""
out=$(flux config reload 2>&1) || true
ok "a zero publish-interval is refused, naming the key" grep -q "publish-interval=0s" <<<"$out"
flux module remove prometheus
done_testing
