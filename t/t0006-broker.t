#!/bin/bash
# Broker and instance metrics agree with the broker's own view: size,
# online brokers (streamed: a broker leaving shows before the next poll),
# overlay health, start time, and the broker process's resource use.
. "$(dirname "$0")/lib.sh"
LOST_BROKER_OK=1 run_inside_flux 4

plan 11

# A long poll interval: anything that changes sooner came through a stream.
flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 poll-interval=60s
url=$(module_url)
for _ in $(seq 50); do scrape "$url" | grep -q '^flux_instance_online_brokers 4$' && break; sleep 0.1; done
s=$(scrape "$url")

is "$(sample flux_instance_brokers <<<"$s")" "$(flux getattr size)" "flux_instance_brokers equals the size attribute"
is "$(sample flux_instance_online_brokers <<<"$s")" 4 "all four brokers online"
is "$(awk '/^flux_overlay_status\{/ && $2 == 1 { split($1, a, "\""); print a[2] }' <<<"$s")" \
    "$(flux overlay status --summary)" "flux_overlay_status equals flux overlay status --summary"
# Compared as numbers: the attribute is printed "%.2f", so "….10" scrapes as "….1".
st=$(sample flux_instance_start_time_seconds <<<"$s")
attr=$(flux getattr broker.starttime)
ok "flux_instance_start_time_seconds ($st) equals broker.starttime ($attr)" \
    awk -v v="$st" -v a="$attr" 'BEGIN { d = v - a; exit !(v != "absent" && d < 0.005 && d > -0.005) }'

pid=$(flux getattr broker.pid)
ok "process CPU seconds are those of the broker process (> 0)" \
    awk -v v="$(sample flux_broker_process_cpu_seconds_total <<<"$s")" 'BEGIN { exit !(v > 0) }'
rss=$(awk '/^VmRSS/ { print $2 * 1024 }' /proc/$pid/status)
ok "resident memory is the broker's (scraped $(sample flux_broker_process_resident_memory_bytes <<<"$s"), /proc says $rss)" \
    awk -v v="$(sample flux_broker_process_resident_memory_bytes <<<"$s")" -v r="$rss" 'BEGIN { exit !(v > r / 2 && v < r * 2) }'
threads=$(awk '/^Threads/ { print $2 }' /proc/$pid/status)
ok "thread count is the broker's (scraped $(sample flux_broker_process_threads <<<"$s"), /proc says $threads)" \
    awk -v v="$(sample flux_broker_process_threads <<<"$s")" -v t="$threads" 'BEGIN { exit !(v >= t - 2 && v <= t + 2) }'

flux overlay disconnect 3 >/dev/null 2>&1
n=absent
for _ in $(seq 100); do
    n=$(scrape "$url" | sample flux_instance_online_brokers)
    [ "$n" = 3 ] && break
    sleep 0.1
done
is "$n" 3 "a disconnected broker leaves flux_instance_online_brokers within seconds, not at the next poll"
ok "the broker collector stays up" bash -c "flux module stats prometheus | jq -e .collectors.broker.healthy >/dev/null"


# With a rank offline, sched-status can no longer be computed from
# resource.status alone; the resource module is asked, and the rows still
# equal flux resource list.
flux module remove prometheus
flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 poll-interval=0.5s
url=$(module_url)
ok "with rank 3 offline, resource rows equal flux resource list" resources_agree ""
ok "and node states equal flux resource status" status_agrees

flux module remove prometheus
done_testing
