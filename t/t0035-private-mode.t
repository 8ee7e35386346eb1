#!/bin/bash
# Private mode: with the instance's access.private-mode (or the
# [prometheus] table's private-mode), series naming users, jobs and drain
# reasons go only to the scrapers private-scrapers lists; an anonymous
# scrape, or a guest's basic-auth user, gets the aggregate view, which adds
# up to what flux jobs shows. Applied by flux config reload.
. "$(dirname "$0")/lib.sh"
run_inside_flux 2
[ -x "$REPO/target/release/flux-prometheus" ] || (cd "$REPO" && cargo build --release --quiet) >&2
export FLUX_EXEC_PATH_PREPEND=$REPO/target/release
plan 22

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# The shipped example's hash, of "change-me", for both users.
hash=$(awk '$1 == "prometheus:" { print $2 }' "$REPO/etc/prometheus/web-config.yml")
printf 'basic_auth_users:\n  prometheus: %s\n  alice: %s\n' "$hash" "$hash" >"$dir/web.yml"

# The instance's config, replaced whole: flux config load, then each
# module's config-reload.
load_config() { flux config load <<<"$1"; }
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
# Label names of every sample line of a scrape (stdin).
names_someone() { grep -v '^#' | grep -E '(\{|,)(user|project|bank|jobid)="|^flux_(node_drain_info|resource_drain_reason_nodes)' | grep -v '^flux_instance_info' ; }
log_says() { flux dmesg | grep prometheus | tail -20 | grep -qF -- "$1"; }

flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 poll-interval=0.3s \
    collectors=jobs,queues,resources,jobflow,users,nodes jobflow-labels=user,project
url=$(module_url)
flux submit --wait true >/dev/null
flux submit --setattr=system.project=climate sleep 300 >/dev/null
flux submit --urgency=hold true >/dev/null
flux resource drain 1 "bad DIMM, ticket 42"
wait_for_value "$url" 'flux_jobs{state="run"}' 1
wait_for_value "$url" 'flux_resource_drain_reason_nodes{reason="bad DIMM, ticket 42"}' 1
full=$(scrape "$url")
ok "an open instance names users, jobs and drain reasons to anyone" \
    bash -c 'grep -q "user=\"" <<<"$1" && grep -q "^flux_node_drain_info" <<<"$1" && grep -q "project=\"climate\"" <<<"$1"' _ "$full"
is "$(sample 'flux_prometheus_access_info{mode="open",view="full"}' <<<"$full")" 1 "flux_prometheus_access_info says open"

load_config '[access]
allow-guest-user = true
private-mode = true'
ok "access.private-mode: the log says no scraper is cleared" log_says "access.private-mode: series naming users, jobs and drain reasons are served to no scraper"
anon=$(scrape "$url")
is "$(names_someone <<<"$anon" | head -3)" "" "an anonymous scrape names no user, project, job or drain reason"
is "$(sample 'flux_prometheus_access_info{mode="private",view="aggregate"}' <<<"$anon")" 1 "flux_prometheus_access_info says private, aggregate"
ok "the text format says so in a comment" grep -q '^# Private mode: ' <<<"$anon"
ok "promtool finds nothing wrong with the aggregate view" promtool check metrics <<<"$anon"
openmetrics_parses() {
    curl -sf -H 'Accept: application/openmetrics-text; version=1.0.0' "$url" | /usr/bin/python3 -c '
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
families = {f.name: f for f in text_string_to_metric_families(sys.stdin.read())}
access = families["flux_prometheus_access"]
assert access.type == "info", access.type
assert access.samples[0].labels == {"mode": "private", "view": "aggregate"}, access.samples
'
}
ok "the OpenMetrics aggregate view passes a strict OpenMetrics parser" openmetrics_parses
# The aggregate adds up to flux jobs.
submitted=$(flux jobs -a -n -o '{id}' | wc -l)
is "$(sample 'flux_jobs_submitted_total' <<<"$anon")" "$submitted" "jobs submitted, summed over users: flux jobs -a counts $submitted"
is "$(sample 'flux_queue_pending_jobs{status="held"}' <<<"$anon")" 1 "held jobs, summed over users and projects"
is "$(sample 'flux_jobs{state="run"}' <<<"$anon")" "$(flux jobs -n -f running | wc -l)" "running jobs as flux jobs counts them"
is "$(sample 'flux_resource_nodes{state="drained"}' <<<"$anon")" \
    "$(sample 'flux_resource_nodes{state="drained"}' <<<"$full")" "drained nodes are still counted"
is "$(code "${url%/metrics}/-/targets")" 200 "/-/targets answers"
is "$(curl -sf "${url%/metrics}/-/targets")" "[]" "and lists no nested instance (they are users' jobs)"

# A listed basic-auth user is served everything; a guest's, the aggregate.
load_config "[access]
allow-guest-user = true
private-mode = true
[prometheus]
web-config = \"$dir/web.yml\"
private-scrapers = [\"prometheus\"]"
cleared=$(curl -sf -u prometheus:change-me "$url")
ok "the listed user is served every user, job and drain reason" \
    bash -c 'grep -q "user=\"" <<<"$1" && grep -q "^flux_node_drain_info.*bad DIMM" <<<"$1"' _ "$cleared"
is "$(sample 'flux_prometheus_access_info{mode="private",view="full"}' <<<"$cleared")" 1 "and told it is the full view"
guest=$(curl -sf -u alice:change-me "$url")
is "$(names_someone <<<"$guest" | head -3)" "" "a guest's basic-auth user is served the aggregate view"
is "$(code -u alice:wrong "$url")" 401 "wrong credentials are still refused"
ok "flux prometheus scrape-config asks as the listed user" bash -c \
    "flux prometheus scrape-config | grep -q 'username: prometheus' && flux prometheus scrape-config | grep -q 'so this job is served every series'"

# private-mode=false cannot open what the instance hides.
load_config "[access]
allow-guest-user = true
private-mode = true
[prometheus]
private-mode = false"
ok "private-mode=false on a private instance: the log says it stays private" log_says "private-mode=false cannot open what access.private-mode hides"
is "$(scrape "$url" | names_someone | head -3)" "" "and nothing is named"

# The [prometheus] table alone keeps them private on an open instance.
load_config '[prometheus]
private-mode = true'
is "$(scrape "$url" | sample 'flux_prometheus_access_info{mode="private",view="aggregate"}')" 1 \
    "[prometheus] private-mode = true on an open instance: the aggregate view"

flux cancel --all >/dev/null 2>&1
flux resource undrain 1
flux module remove prometheus
done_testing
