# Broker CPU of one resources refresh right after an allocation changed
# (run by scripts/bench-resources inside the benchmark instance).
# Alternates, after each job's cancellation has freed its resources:
#   derived: the three RPCs the module sends every poll
#            (job-manager.resource-status, uncached after the change;
#            resource.status; config.get)
#   sched-status: resource.sched-status alone, what `flux resource list`
#            sends and what the module asked before
# and sums the broker's CPU (utime+stime) around each.
import os
import sys

import flux
import flux.job

h = flux.Flux()
pid = int(h.attr_get("broker.pid"))
hz = os.sysconf("SC_CLK_TCK")


def cpu():
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


jobs = [j.id for j in flux.job.JobList(h, filters=["running"], max_entries=int(sys.argv[1])).jobs()]
ticks = {"derived": 0, "sched-status": 0}
count = {"derived": 0, "sched-status": 0}
for i, jobid in enumerate(jobs):
    flux.job.cancel(h, jobid)
    flux.job.event_wait(h, jobid, "clean", raiseJobException=False)
    kind = "derived" if i % 2 == 0 else "sched-status"
    c0 = cpu()
    if kind == "derived":
        for topic in ("job-manager.resource-status", "resource.status", "config.get"):
            h.rpc(topic, {}).get_str()
    else:
        h.rpc("resource.sched-status", {}).get_str()
    ticks[kind] += cpu() - c0
    count[kind] += 1
for kind in ticks:
    ms = ticks[kind] / hz / count[kind] * 1000
    print(f"after an allocation change, {kind}: {ms:.2f} ms broker CPU per refresh ({count[kind]} samples)")
