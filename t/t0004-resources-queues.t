#!/bin/bash
# Resource and queue metrics agree with flux resource list, flux resource
# status and flux queue list as jobs run, nodes drain and queues stop.
. "$(dirname "$0")/lib.sh"
run_inside_flux 4 --test-hosts=node[0-3] --config-path="$(dirname "$0")/etc/props.toml"

plan 12

flux queue start --all >/dev/null 2>&1
flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 poll-interval=0.3s
url=$(module_url)

# Rows "state nnodes ncores ngpus" from a scrape (stdin), for queue $1 or all.
rows_from_scrape() {
    awk -v q="${1:-}" '
        { v[$1] = $2 }
        END {
            split("free allocated down", st, " ")
            for (i = 1; i <= 3; i++) {
                s = st[i]
                if (q == "") { n = v["flux_resource_nodes{state=\"" s "\"}"]; c = v["flux_resource_cores{state=\"" s "\"}"]; g = v["flux_resource_gpus{state=\"" s "\"}"] }
                else { l = "{queue=\"" q "\",state=\"" s "\"}"; n = v["flux_queue_resource_nodes" l]; c = v["flux_queue_resource_cores" l]; g = v["flux_queue_resource_gpus" l] }
                print s, n + 0, c + 0, g + 0
            }
        }'
}
# The same rows from flux resource list (states it leaves out are zero).
rows_from_cli() {
    local qopt=()
    [ -n "${1:-}" ] && qopt=(-q "$1")
    flux resource list "${qopt[@]}" -no '{state} {nnodes} {ncores} {ngpus}' |
        awk '{ n[$1] += $2; c[$1] += $3; g[$1] += $4 }
             END { split("free allocated down", st, " "); for (i = 1; i <= 3; i++) print st[i], n[st[i]] + 0, c[st[i]] + 0, g[st[i]] + 0 }'
}
resource_series() { grep -E '^flux_(queue_)?resource_' || true; }
agree() {   # $1: queue or ""; compares between two scrapes that agree
    local a b cli
    for _ in $(seq 60); do
        a=$(scrape "$url"); cli=$(rows_from_cli "$1"); b=$(scrape "$url")
        if [ "$(resource_series <<<"$a")" = "$(resource_series <<<"$b")" ] &&
            [ "$(rows_from_scrape "$1" <<<"$a")" = "$cli" ]; then
            return 0
        fi
        sleep 0.2
    done
    diag "scraped: $(rows_from_scrape "$1" <<<"$a" | tr '\n' ';') cli: $(tr '\n' ';' <<<"$cli")"
    return 1
}
status_agrees() {
    local s cli want got
    for _ in $(seq 60); do
        s=$(scrape "$url")
        cli=$(flux resource status -no '{state} {nnodes}')
        want=$(awk '{ st = $1; off = sub(/\*$/, "", st); n[st] += $2; if (off) o += $2 }
                    END { printf "avail=%d offline=%d drained=%d draining=%d excluded=%d torpid=%d", n["avail"], o, n["drained"], n["draining"], n["exclude"], n["torpid"] }' <<<"$cli")
        got=$(awk '/^flux_resource_status_nodes/ { split($1, a, "\""); v[a[2]] = $2 }
                   END { printf "avail=%d offline=%d drained=%d draining=%d excluded=%d torpid=%d", v["avail"], v["offline"], v["drained"], v["draining"], v["excluded"], v["torpid"] }' <<<"$s")
        [ "$want" = "$got" ] && return 0
        sleep 0.2
    done
    diag "scraped $got; flux resource status: $want"
    return 1
}
queues_agree() {
    local s cli want got
    for _ in $(seq 60); do
        s=$(scrape "$url")
        want=$(flux queue list -no '{queue} {enabled} {started}' | sort | tr '\n' ';')
        got=$(for q in batch debug; do
                  e=$(sample "flux_queue_enabled{queue=\"$q\"}" <<<"$s"); t=$(sample "flux_queue_started{queue=\"$q\"}" <<<"$s")
                  echo "$q $([ "$e" = 1 ] && echo ✔ || echo ✗) $([ "$t" = 1 ] && echo ✔ || echo ✗)"
              done | sort | tr '\n' ';')
        [ "$want" = "$got" ] && return 0
        sleep 0.2
    done
    diag "scraped $got; flux queue list: $want"
    return 1
}

ok "idle: instance rows equal flux resource list" agree ""
ok "idle: node states equal flux resource status" status_agrees
ok "idle: queues equal flux queue list" queues_agree

a=$(flux submit -N2 -n2 sleep 300)
b=$(flux submit -n3 -g1 sleep 300)
flux job wait-event $a start; flux job wait-event $b start
flux resource drain 1 "bad dimm"
flux resource drain 3 "offline for repair" 2>/dev/null || true
ok "busy and draining: instance rows equal flux resource list" agree ""
ok "busy and draining: batch rows equal flux resource list -q batch" agree batch
ok "busy and draining: debug rows equal flux resource list -q debug" agree debug
ok "busy and draining: node states equal flux resource status" status_agrees

flux queue stop debug >/dev/null 2>&1
flux queue disable --message="maintenance" batch >/dev/null 2>&1
ok "a stopped and a disabled queue show as in flux queue list" queues_agree
flux queue start debug >/dev/null 2>&1
flux queue enable batch >/dev/null 2>&1
ok "started and enabled again" queues_agree

flux cancel $a $b
flux resource undrain 1 3 2>/dev/null || flux resource undrain 1
ok "after undrain and cancel: instance rows equal flux resource list" agree ""
ok "after undrain and cancel: node states equal flux resource status" status_agrees
ok "every collector reports up" bash -c "flux module stats prometheus | jq -e '[.collectors[].healthy] | all' >/dev/null"
flux module remove prometheus
done_testing
