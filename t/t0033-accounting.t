#!/bin/bash
# flux-accounting's fair share, limits and held jobs (accounting collector)
# against flux account and flux jobs: absent without its plugin; a limit
# that holds a job; a limit raised; a module reload; the plugin removed
# and loaded again.
. "$(dirname "$0")/lib.sh"
run_inside_flux 1
plan 14

flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 poll-interval=0.3s
url=$(module_url)
value() { value_at "$url" "$1"; }
# Waits for series $1 to read $2 (up to 30 s).
wait_value() { wait_for_value "$url" "$1" "$2"; }
# flux_accounting_ samples in a scrape ("unreachable" where it fails).
families() {
    local text
    text=$(scrape "$url") || { echo unreachable; return; }
    grep -c '^flux_accounting_' <<<"$text" || true
}

flux jobtap remove mf_priority.so >/dev/null 2>&1 || true
sleep 1
is "$(families)" 0 "without flux-accounting's plugin no flux_accounting_ series is exported"
is "$(value 'flux_prometheus_collector_up{collector="accounting"}')" 1 "and the collector is up"

if ! flux account --help >/dev/null 2>&1 || ! flux jobtap load -r .priority-default mf_priority.so 2>/dev/null; then
    for n in $(seq 3 14); do
        skip "flux-accounting check $n" "flux-accounting is not installed (flux account, mf_priority.so)"
    done
    flux module remove prometheus
    done_testing
fi

me=$(id -un)
db=$(mktemp -d)/accounting.db
flux account -p "$db" create-db
flux account-service -p "$db" -t
flux account add-bank root 1
flux account add-bank --parent-bank=root limited 1
flux account add-queue batch --max-running-jobs=3
flux account add-user --username="$me" --userid="$(id -u)" --bank=limited --max-running-jobs=1 --max-active-jobs=5
flux account-priority-update -p "$db"

assoc="user=\"$me\",bank=\"limited\""
ok "the association's running-jobs limit is flux account's" \
    wait_value "flux_accounting_association_limit{$assoc,limit=\"max-running-jobs\"}" \
    "$(flux account list-users -o '{max_running_jobs}' -B limited | tail -1 | tr -d ' ')"
is "$(value "flux_accounting_association_fairshare{$assoc}")" \
    "$(flux account list-users -o '{fairshare}' -B limited | tail -1 | tr -d ' ')" \
    "its fair share is flux account's"
is "$(value "flux_accounting_association_limit{$assoc,limit=\"max-nodes\"}")" absent \
    "a limit flux account calls unlimited is absent"
is "$(value 'flux_accounting_queue_limit{queue="batch",limit="max-running-jobs"}')" 3 \
    "the queue's per-association limit is flux account's"

running=$(flux submit --setattr=system.bank=limited -n1 sleep 600)
flux job wait-event -t 30 "$running" start >/dev/null
held=$(flux submit --setattr=system.bank=limited -n1 sleep 600)
flux job wait-event -t 30 "$held" dependency-add >/dev/null
# The association's running, active and held jobs, as flux jobs shows them.
from_cli() {
    flux jobs -n -o '{state} {dependencies}' | awk '
        $1 == "RUN" { r++ } { a++ } $2 ~ /max-running-jobs-user-limit/ { h++ }
        END { printf "%d %d %d\n", r, a, h }'
}
from_scrape() {
    scrape "$url" | awk -v a="$assoc" '
        $1 == "flux_accounting_association_usage{" a ",limit=\"max-running-jobs\"}" { r = $2 }
        $1 == "flux_accounting_association_usage{" a ",limit=\"max-active-jobs\"}" { n = $2 }
        $1 == "flux_accounting_association_held_jobs{" a "}" { h = $2 }
        END { printf "%d %d %d\n", r, n, h }'
}
agree() {
    local a c
    for _ in $(seq 120); do
        a=$(from_scrape)
        c=$(from_cli)
        [ "$a" = "$c" ] && return 0
        sleep 0.25
    done
    diag "module: $a; flux jobs: $c"
    return 1
}
ok "running, active and held jobs are those of flux jobs (1 2 1)" agree
is "$(from_cli)" "1 2 1" "flux jobs: one running, two active, one held"
is "$(value "flux_accounting_association_limit_usage_ratio{$assoc,limit=\"max-running-jobs\"}")" 1 \
    "the full running-jobs limit reads 1"

flux account edit-user "$me" --bank=limited --max-running-jobs=2
flux account-priority-update -p "$db"
flux job wait-event -t 30 "$held" start >/dev/null
ok "a raised limit: the held job runs, and nothing is held" \
    wait_value "flux_accounting_association_held_jobs{$assoc}" 0
ok "the raised limit is exported" \
    wait_value "flux_accounting_association_limit{$assoc,limit=\"max-running-jobs\"}" 2

flux module remove prometheus
flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 poll-interval=0.3s
url=$(module_url)
ok "after a module reload the association is back" \
    wait_value "flux_accounting_association_usage{$assoc,limit=\"max-running-jobs\"}" 2

flux cancel --all >/dev/null 2>&1
flux queue drain --timeout=60
flux jobtap remove mf_priority.so
gone() {
    for _ in $(seq 120); do
        [ "$(families)" = 0 ] && return 0
        sleep 0.25
    done
    return 1
}
ok "the plugin removed: every flux_accounting_ series goes" gone
flux jobtap load mf_priority.so
flux account-priority-update -p "$db"
ok "the plugin loaded again is found within 12 polls (its own and the owner's associations)" \
    wait_value flux_accounting_associations 2
flux jobtap remove mf_priority.so
flux jobtap load .priority-default 2>/dev/null || true
flux module remove prometheus
done_testing
