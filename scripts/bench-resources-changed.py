# Broker CPU while allocations change (run by scripts/bench-resources inside
# the benchmark instance): cancels RATE running jobs per second for SECONDS
# seconds, each cancellation freeing one job's resources, and prints the
# broker's CPU time (utime+stime, in clock ticks) spent meanwhile and the
# number of jobs canceled. The caller runs it with and without the module
# loaded; the difference is what the module's refreshes cost the broker.
#   usage: flux python bench-resources-changed.py SECONDS RATE
import os
import sys
import time

import flux
import flux.job

seconds, rate = float(sys.argv[1]), float(sys.argv[2])
h = flux.Flux()
pid = int(h.attr_get("broker.pid"))


def cpu():
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


want = int(seconds * rate)
jobs = [j.id for j in flux.job.JobList(h, filters=["running"], max_entries=want).jobs()]
if len(jobs) < want:
    sys.exit(f"bench-resources-changed: only {len(jobs)} running jobs, {want} needed")
c0 = cpu()
start = time.monotonic()
for i, jobid in enumerate(jobs):
    delay = start + i / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    flux.job.cancel(h, jobid)
remaining = start + seconds - time.monotonic()
if remaining > 0:
    time.sleep(remaining)
print(cpu() - c0, len(jobs))
