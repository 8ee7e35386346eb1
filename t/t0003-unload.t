#!/bin/bash
# Load, scrape and remove the module many times: the broker ends with the
# threads and file descriptors it had, and its memory does not grow with
# the number of cycles.
. "$(dirname "$0")/lib.sh"
run_inside_flux 1

plan 3

pid=$(flux getattr broker.pid)
cycle() {
    flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 &&
        curl -sf -o /dev/null "$(module_url)" &&
        flux module remove prometheus
}
measure() { echo "$(awk '/VmRSS/{print $2}' /proc/$pid/status) $(ls /proc/$pid/task | wc -l) $(ls /proc/$pid/fd | wc -l)"; }
for i in $(seq 10); do cycle; done
read -r rss0 threads0 fds0 <<<"$(measure)"
for i in $(seq 60); do cycle; done
read -r rss1 threads1 fds1 <<<"$(measure)"
diag "after 10 cycles: rss ${rss0} kB, $threads0 threads, $fds0 fds; after 60 more: rss ${rss1} kB, $threads1 threads, $fds1 fds"
# Some brokers keep a descriptor per module load whatever the module
# (flux-core 0.78 does, for its own heartbeat module too): what flux-core's
# own module leaves over as many cycles is the allowance.
read -r _ _ before <<<"$(measure)"
for i in $(seq 60); do flux module reload -f heartbeat; done
read -r _ _ after <<<"$(measure)"
broker_own=$((after - before))
[ "$broker_own" = 0 ] || diag "this broker keeps $broker_own descriptors over 60 loads of its own heartbeat module"
is "$threads1" "$threads0" "no thread outlives the module"
is "$((fds1 - fds0))" "$broker_own" "no file descriptor outlives the module (beyond what the broker keeps for any module)"
ok "broker memory grows by less than 1 MiB over 60 cycles" test $((rss1 - rss0)) -lt 1024
done_testing
