#!/bin/bash
# The allocated set comes from the job-manager journal where that equals
# the job manager's own: rows still equal flux resource list as jobs come
# and go, alloc-bypass jobs are left out as flux leaves them out, and with
# housekeeping configured (resources stay allocated after a job's free
# event) the collector asks the job manager instead.
. "$(dirname "$0")/lib.sh"
if [ -z "${FLUX_PROMETHEUS_TEST_INNER:-}" ]; then
    # A config directory of its own, so the test can reconfigure the
    # instance with flux config reload.
    T_CONF=$(mktemp -d)
    cp "$(dirname "$0")/etc/props.toml" "$T_CONF/"
    export T_CONF
    trap 'rm -rf "$T_CONF"' EXIT
fi
run_inside_flux 4 --test-hosts=node[0-3] --config-path="$T_CONF"

plan 12

source_is() {
    local want=$1 got
    for _ in $(seq 60); do
        got=$(flux module stats prometheus | jq -r .collectors.resources.source)
        [ "$got" = "$want" ] && return 0
        sleep 0.2
    done
    diag "resources collector source: $got (expected $want)"
    return 1
}

flux queue start --all >/dev/null 2>&1
flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 poll-interval=0.3s
url=$(module_url)

a=$(flux submit -N2 -n2 sleep 300)
b=$(flux submit -n3 -g1 sleep 300)
flux job wait-event "$a" start >/dev/null; flux job wait-event "$b" start >/dev/null
ok "running jobs: the allocated set is read from the journal" source_is job-manager.events-journal
ok "running jobs: instance rows equal flux resource list" resources_agree ""
ok "running jobs: batch rows equal flux resource list -q batch" resources_agree batch
flux cancel "$b"; flux job wait-event "$b" clean >/dev/null
ok "one job freed: instance rows equal flux resource list" resources_agree ""

flux jobtap load alloc-bypass.so
bypass=$(flux submit --setattr=system.alloc-bypass.R="$(flux R encode -r 3 -c 0-3)" sleep 300)
flux job wait-event "$bypass" start >/dev/null
ok "an alloc-bypass job is left out, as flux resource list leaves it out" resources_agree ""
flux cancel "$bypass" "$a"; flux job wait-event "$a" clean >/dev/null

# Housekeeping holds a job's resources after its free event: the journal
# cannot say when they come back, so the job manager is asked.
cat >"$T_CONF/housekeeping.toml" <<HK
[job-manager.housekeeping]
command = ["sleep", "300"]
HK
flux config reload
hk=$(flux submit -N2 true)
flux job wait-event "$hk" clean >/dev/null
ok "housekeeping configured: the job manager's allocated set is asked" source_is job-manager.resource-status
ok "during housekeeping: nodes still allocated" bash -c "test \$(flux housekeeping list -no '{nnodes}' | awk '{ n += \$1 } END { print n + 0 }') -gt 0"
ok "during housekeeping: instance rows equal flux resource list" resources_agree ""
housekeeping_done() {
    for _ in $(seq 100); do
        [ -z "$(flux housekeeping list -no '{id}')" ] && return 0
        sleep 0.2
    done
    return 1
}
flux housekeeping kill --all --signal=15
ok "housekeeping finishes" housekeeping_done
ok "after housekeeping: instance rows equal flux resource list" resources_agree ""
rm "$T_CONF/housekeeping.toml"
flux config reload
c=$(flux submit -N1 sleep 300); flux job wait-event "$c" start >/dev/null
ok "housekeeping unconfigured: back to the journal" source_is job-manager.events-journal
ok "and rows equal flux resource list" resources_agree ""
flux cancel "$c"
flux module remove prometheus
done_testing
