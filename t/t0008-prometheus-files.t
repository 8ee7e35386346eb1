#!/bin/bash
# The Prometheus side in etc/prometheus is valid for the Prometheus that
# Debian ships: promtool accepts the configuration, the web config and the
# alerting rules, and the rules' unit tests pass. Needs no Flux.
. "$(dirname "$0")/lib.sh"
if ! command -v promtool >/dev/null; then
    echo "1..0 # SKIP promtool is not installed (Debian package prometheus)"
    exit 0
fi
golden=("$REPO"/tests/fixtures/*/exposition.txt "$REPO"/tests/fixtures/flux-accounting/*/exposition.txt)
plan $((4 + ${#golden[@]}))
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cp "$REPO"/etc/prometheus/*.yml "$dir/"
# The scrape job's password file must exist for promtool to accept it.
echo change-me >"$dir/flux-scrape.password"
sed -i "s|/etc/prometheus/flux-scrape.password|$dir/flux-scrape.password|" "$dir/prometheus.yml"
check() { out=$("$@" 2>&1) || { diag "$out"; return 1; }; }
ok "promtool check config etc/prometheus/prometheus.yml" check promtool check config "$dir/prometheus.yml"
ok "promtool check web-config etc/prometheus/web-config.yml" check promtool check web-config "$dir/web-config.yml"
ok "promtool check rules etc/prometheus/flux-alerts.yml" check promtool check rules "$dir/flux-alerts.yml"
ok "promtool test rules etc/prometheus/flux-alerts.test.yml" check promtool test rules "$dir/flux-alerts.test.yml"
# promtool check metrics finds nothing in what the module renders from each
# recorded instance (the golden expositions the cargo tests keep current),
# flux-accounting's sets too.
for g in "${golden[@]}"; do
    set_name=$(basename "$(dirname "$g")")
    ok "promtool check metrics: the exposition of $set_name" bash -c 'out=$(promtool check metrics <"$1" 2>&1) && [ -z "$out" ] || { echo "# $out"; exit 1; }' _ "$g"
done
done_testing
