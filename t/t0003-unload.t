#!/bin/bash
# Load, scrape and remove the module many times: the broker ends with the
# threads and file descriptors it had, and neither its memory nor its
# address space grows with the number of cycles. (The module's heap is
# mimalloc's, linked in: were it not released at unload, each cycle would
# leave its arena's reserved address space behind, 1 GiB.)
. "$(dirname "$0")/lib.sh"
run_inside_flux 1

plan 4

pid=$(flux getattr broker.pid)
cycle() {
    flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 &&
        curl -sf -o /dev/null "$(module_url)" &&
        flux module remove prometheus
}
measure() {
    echo "$(awk '/VmRSS/{print $2}' /proc/$pid/status) $(ls /proc/$pid/task | wc -l) $(ls /proc/$pid/fd | wc -l) $(awk '/VmSize/{print $2}' /proc/$pid/status)"
}
for i in $(seq 10); do cycle; done
read -r rss0 threads0 fds0 vm0 <<<"$(measure)"
for i in $(seq 60); do cycle; done
read -r rss1 threads1 fds1 vm1 <<<"$(measure)"
diag "after 10 cycles: rss ${rss0} kB, address space ${vm0} kB, $threads0 threads, $fds0 fds; after 60 more: rss ${rss1} kB, address space ${vm1} kB, $threads1 threads, $fds1 fds"
# Some brokers keep a descriptor per module load whatever the module
# (flux-core 0.78 does, for its own heartbeat module too): what flux-core's
# own module leaves over as many cycles is the allowance.
read -r _ _ before _ <<<"$(measure)"
for i in $(seq 60); do flux module reload -f heartbeat; done
read -r _ _ after _ <<<"$(measure)"
broker_own=$((after - before))
[ "$broker_own" = 0 ] || diag "this broker keeps $broker_own descriptors over 60 loads of its own heartbeat module"
is "$threads1" "$threads0" "no thread outlives the module"
is "$((fds1 - fds0))" "$broker_own" "no file descriptor outlives the module (beyond what the broker keeps for any module)"
ok "broker memory grows by less than 1 MiB over 60 cycles" test $((rss1 - rss0)) -lt 1024
ok "broker address space grows by less than 64 MiB over 60 cycles" test $((vm1 - vm0)) -lt 65536
done_testing
