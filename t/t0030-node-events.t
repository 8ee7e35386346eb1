#!/bin/bash
# Node trouble history: the resource journal's drain, undrain, offline and
# online events counted by the nodes they name, as flux resource eventlog
# lists them, for the instance, for each queue's nodes and for each node;
# drained nodes by reason.
. "$(dirname "$0")/lib.sh"
run_inside_flux 4 --test-hosts=node[0-3] --config-path="$(dirname "$0")/etc/props.toml"
plan 12

ARGS="listen=127.0.0.1:0 poll-interval=0.5s collectors=resources,queues,nodes"
flux module load --name=prometheus "$MODULE_SO" $ARGS
url=$(module_url)
value() { value_at "$url" "$1"; }
wait_for() { wait_for_value "$url" "$1" "$2"; }
# The nodes flux resource eventlog's events of one name name.
eventlog_nodes() {
    flux resource eventlog -f json 2>/dev/null | jq -s --arg n "$1" \
        '[.[] | select(.name == $n) | .context.idset // "" | split(",")[] | select(. != "")
          | (split("-") | if length == 2 then (.[1] | tonumber) - (.[0] | tonumber) + 1 else 1 end)] | add // 0'
}

flux resource drain 2-3 "t0030-fan-failure"
ok "two drained nodes count as two drain events" wait_for 'flux_resource_node_events_total{event="drain"}' 2
ok "and by their reason" wait_for 'flux_resource_drain_reason_nodes{reason="t0030-fan-failure"}' 2
ok "both are the debug queue's nodes (node[2-3])" \
    wait_for 'flux_queue_resource_node_events_total{queue="debug",event="drain"}' 2
is "$(value 'flux_queue_resource_node_events_total{queue="batch",event="drain"}')" 0 "the batch queue's nodes had none"
is "$(value 'flux_queue_resource_node_events_total{queue="batch",event="online"}') $(value 'flux_queue_resource_node_events_total{queue="debug",event="online"}')" \
    "2 2" "each queue's two nodes came online once"
ok "per node: node2 was drained once" wait_for 'flux_node_events_total{node="node2",rank="2",event="drain"}' 1
is "$(value 'flux_resource_long_drained_nodes{longer_than="1h"}')" 0 "none has been drained for an hour"
flux resource undrain 3
ok "an undrained node counts as an undrain event" wait_for 'flux_resource_node_events_total{event="undrain"}' 1
ok "and leaves its reason" wait_for 'flux_resource_drain_reason_nodes{reason="t0030-fan-failure"}' 1
ok "per node: node3 was undrained once" wait_for 'flux_node_events_total{node="node3",rank="3",event="undrain"}' 1
for name in drain undrain online; do
    [ "$(value "flux_resource_node_events_total{event=\"$name\"}")" = "$(eventlog_nodes $name)" ] || bad="$bad $name"
done
ok "every count is what flux resource eventlog lists${bad:+ (differ:$bad)}" test -z "${bad:-}"
flux resource undrain 2
flux module remove prometheus
flux module load --name=prometheus "$MODULE_SO" $ARGS
url=$(module_url)
ok "a reloaded module counts the journal from its start again" \
    wait_for 'flux_resource_node_events_total{event="undrain"}' 2
flux module remove prometheus
done_testing
