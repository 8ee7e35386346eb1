#!/bin/bash
# Resource and queue metrics agree with flux resource list, flux resource
# status and flux queue list as jobs run, nodes drain and queues stop.
. "$(dirname "$0")/lib.sh"
run_inside_flux 4 --test-hosts=node[0-3] --config-path="$(dirname "$0")/etc/props.toml"

plan 13

flux queue start --all >/dev/null 2>&1
flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 poll-interval=0.3s
url=$(module_url)

ok "idle: instance rows equal flux resource list" resources_agree ""
ok "idle: node states equal flux resource status" status_agrees
ok "idle: queues equal flux queue list" queues_agree
# Every rank has a broker here, so every change to resource.status is a
# resource journal event: while none comes, the last answer is used again.
ok "idle: resource.status is not asked again while the resource journal shows no change" \
    bash -c 'sleep 1; flux module stats prometheus | jq -e ".resource_status.reused > 0" >/dev/null'

a=$(flux submit -N2 -n2 sleep 300)
b=$(flux submit -n3 -g1 sleep 300)
flux job wait-event $a start; flux job wait-event $b start
flux resource drain 1 "bad dimm"
flux resource drain 3 "offline for repair" 2>/dev/null || true
ok "busy and draining: instance rows equal flux resource list" resources_agree ""
ok "busy and draining: batch rows equal flux resource list -q batch" resources_agree batch
ok "busy and draining: debug rows equal flux resource list -q debug" resources_agree debug
ok "busy and draining: node states equal flux resource status" status_agrees

flux queue stop debug >/dev/null 2>&1
flux queue disable --message="maintenance" batch >/dev/null 2>&1
ok "a stopped and a disabled queue show as in flux queue list" queues_agree
flux queue start debug >/dev/null 2>&1
flux queue enable batch >/dev/null 2>&1
ok "started and enabled again" queues_agree

flux cancel $a $b
flux resource undrain 1 3 2>/dev/null || flux resource undrain 1
ok "after undrain and cancel: instance rows equal flux resource list" resources_agree ""
ok "after undrain and cancel: node states equal flux resource status" status_agrees
ok "every collector reports up" bash -c "flux module stats prometheus | jq -e '[.collectors[].healthy] | all' >/dev/null"
flux module remove prometheus
done_testing
