#!/bin/bash
# The README's walk-through ("From build to a Prometheus graph"), run
# literally as a person would: the lines before `flux start` in a shell, the
# rest typed into the instance's shell. Prometheus then has the instance's
# jobs, and the work tree is as clean as before (everything went to the
# scratch directory the walk-through makes).
. "$(dirname "$0")/lib.sh"
if ! flux=$(find_flux); then
    echo "1..0 # SKIP flux-core is not installed (no flux on PATH or via pkg-config)"
    exit 0
fi
if ! command -v prometheus >/dev/null; then
    echo "1..0 # SKIP prometheus is not installed (Debian package prometheus)"
    exit 0
fi
if curl -s --max-time 2 -o /dev/null http://localhost:9090/ 2>/dev/null; then
    echo "1..0 # SKIP something already listens on localhost:9090, the walk-through's Prometheus port"
    exit 0
fi
cd "$REPO" || exit 1
plan 6
block=$(awk '/^## From build to a Prometheus graph/ { on = 1 } on && /^```sh/ { grab = 1; next } grab && /^```/ { exit } grab { print }' README.md)
before=$(sed -n '/^flux start/q; p' <<<"$block")
inside=$(sed -n '/^flux start/,$p' <<<"$block" | tail -n +2)
ok "the README has the walk-through" test -n "$before" -a -n "$inside"
status_before=$(git status --porcelain 2>/dev/null)
log=$(mktemp)
trap 'rm -f "$log"; pkill -f "prometheus --config.file=prometheus.yml" 2>/dev/null' EXIT
# As typed: the shell `flux start` opens reads the rest, then asks
# Prometheus for what the walk-through says to graph.
bash -c "$before
\"$flux\" start --test-size=1 bash -s" >"$log" 2>&1 <<EOF
$inside
sleep 12
curl -s 'http://localhost:9090/api/v1/query' --data-urlencode 'query=sum(flux_jobs)' | jq -r '"graph: " + .data.result[0].value[1]'
curl -s 'http://localhost:9090/api/v1/query' --data-urlencode 'query=up{job="flux"}' | jq -r '"up: " + .data.result[0].value[1]'
flux cancel --all
flux module remove prometheus
kill %1
EOF
ok "Prometheus graphs flux_jobs: the 10 jobs" grep -qx "graph: 10" "$log"
ok "Prometheus scrapes the module (up is 1)" grep -qx "up: 1" "$log"
[ "$FAILED" = 0 ] || diag "$(tail -20 "$log")"
is "$(git status --porcelain 2>/dev/null)" "$status_before" "the work tree is as clean as before the walk-through"
# make demo shows cargo's progress rather than staying silent while it
# builds, then the scrape.
demo=$(make -s demo 2>&1)
ok "make demo shows cargo's progress" grep -qE "^ *Finished .release. profile" <<<"$demo"
ok "make demo ends with a scrape" grep -q "^flux_jobs{state=" <<<"$demo"
done_testing
