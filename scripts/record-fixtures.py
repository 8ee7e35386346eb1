"""Makes the job and node mix inside a running instance, then records what
the collectors read and what the flux command line answers.

Run by scripts/record-fixtures as `flux python record-fixtures.py OUTDIR
CONFIG` inside a 4-broker instance started with CONFIG. The file format is
described in tests/fixtures/README.md.
"""

import errno
import json
import os
import re
import subprocess
import sys
import time

import flux
from flux.job import JobID

OUT, CONFIG = sys.argv[1], sys.argv[2]
h = flux.Flux()


def sh(*args, check=True, stdin=None):
    """Runs a flux command; returns its standard output."""
    proc = subprocess.run(
        ["flux", *args], capture_output=True, text=True, check=False, input=stdin
    )
    if check and proc.returncode != 0:
        sys.exit(f"record-fixtures: flux {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def submit(*args):
    return sh("submit", *args).strip()


def wait_state(jobid, states, timeout=60.0):
    """Waits until job `jobid` is in one of `states` (flux jobs' names)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = sh("jobs", "-no", "{state}", jobid).strip()
        if state in states:
            return state
        time.sleep(0.1)
    sys.exit(f"record-fixtures: job {jobid} never reached {states}")


def settle(timeout=60.0):
    """Waits until nothing moves: no job in CLEANUP and the listing stable."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        now = sh("jobs", "-a", "-no", "{id} {state} {result}")
        if "CLEANUP" not in now and now == last:
            return
        last = now
        time.sleep(0.5)
    sys.exit("record-fixtures: the instance never settled")


def error_object(exc):
    code = exc.errno if isinstance(exc, OSError) and exc.errno else errno.EPROTO
    return {
        "__error__": {
            "errno": code,
            "strerror": os.strerror(code),
            "msg": str(exc),
        }
    }


def ask(topic, payload=None, nodeid=0):
    """One response payload, or an error object."""
    try:
        resp = h.rpc(topic, payload if payload is not None else {}, nodeid).get()
        return resp if resp is not None else {}
    except OSError as exc:
        return error_object(exc)


def stream(topic, payload, until, act=None):
    """Every response of a streaming RPC up to the one `until` accepts;
    `act`, if given, sees each response first."""
    responses = []
    fut = h.rpc(topic, payload, 0, flux.constants.FLUX_RPC_STREAMING)
    while True:
        try:
            resp = fut.get()
        except OSError as exc:
            responses.append(error_object(exc))
            return responses
        responses.append(resp)
        if act:
            act(resp)
        if until(resp):
            return responses
        fut.reset()


def write_json(name, value):
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(value, f, indent=1, sort_keys=True)
        f.write("\n")


def write_text(name, text):
    # Some commands color their output even into a pipe.
    with open(os.path.join(OUT, name), "w") as f:
        f.write(re.sub(r"\x1b\[[0-9;]*m", "", text))


# --- The mix -------------------------------------------------------------
sh("queue", "start", "--all")
# Inactive jobs of every result, all in the default queue (batch).
sh("run", "true")
sh("run", "false", check=False)
sh("run", "-t", "1s", "sleep", "30", check=False)
canceled = submit("sleep", "30")
wait_state(canceled, ["RUN"])
sh("cancel", canceled)
settle()

# node2 drained while idle; node[4-5] have no broker (offline), node3 is
# also excluded by the config.
sh("resource", "drain", "node2", "bad dimm")
# Running jobs, a node in housekeeping, then pending jobs: one that cannot
# fit now (whole nodes, while every usable node is partly busy), one
# behind it, one in the stopped debug queue, one held, one
# waiting on a dependency.
running = [
    submit("-N2", "-n2", "sleep", "inf"),
    submit("-n4", "-g1", "sleep", "inf"),
]
for jobid in running:
    wait_state(jobid, ["RUN"])
# Housekeeping, configured now so that the inactive jobs above released
# their nodes at once: the next job's node stays in housekeeping.
with open(CONFIG, "a") as f:
    f.write('\n[job-manager.housekeeping]\ncommand = ["sleep", "3600"]\n')
sh("config", "reload")
sh("run", "-n1", "true")
submit("-N2", "--exclusive", "sleep", "inf")
submit("sleep", "inf")
sh("queue", "stop", "debug")
submit("-q", "debug", "sleep", "inf")
submit("--urgency=0", "sleep", "inf")
submit(f"--dependency=afterok:{running[0]}", "true")

settle()
time.sleep(1)

# --- What the collectors read ------------------------------------------
attrs = {}
for name in [
    "broker.hostname",
    "broker.pid",
    "broker.starttime",
    "hostlist",
    "instance-level",
    "jobid",
    "local-uri",
    "parent-uri",
    "rank",
    "security.owner",
    "size",
    "tbon.fanout",
    "version",
]:
    try:
        attrs[name] = h.attr_get(name)
    except OSError:
        attrs[name] = None
write_json("attrs.json", attrs)

for topic in [
    "job-list.job-stats",
    "job-manager.queue-list",
    "job-manager.getinfo",
    "job-manager.resource-status",
    "resource.status",
    "resource.sched-status",
    "sched.resource-status",
    "config.get",
    "overlay.health",
    "module.list",
    "state-machine.get",
]:
    write_json(f"{topic}.json", ask(topic))

write_json(
    "job-list.list.json",
    ask("job-list.list", {"max_entries": 50, "attrs": ["all"]}),
)
for group in ["broker.online", "broker.torpid"]:
    write_json(f"groups.get.{group}.json", ask("groups.get", {"name": group}))

queues = ask("job-manager.queue-list").get("queues", [])
status = {"": ask("job-manager.queue-status", {})}
for queue in queues:
    status[queue] = ask("job-manager.queue-status", {"name": queue})
write_json("job-manager.queue-status.json", status)

write_json(
    "job-manager.events-journal.json",
    stream(
        "job-manager.events-journal",
        {"full": True},
        lambda resp: resp.get("id") == -1 or "__error__" in resp,
    ),
)

# Every loaded module's stats and thread rusage, keyed by module name.
modules = sorted(m["name"] for m in ask("module.list").get("mods", []))
write_json("module.stats-get.json", {m: ask(f"{m}.stats-get") for m in modules})
write_json(
    "module.rusage.json", {m: ask(f"{m}.rusage", {"who": "thread"}) for m in modules}
)

# --- What the command line says at the same instant ---------------------
write_text("cli.jobs-stats.txt", sh("jobs", "--stats-only", "-a", check=False))
write_text(
    "cli.jobs-stats-by-queue.txt",
    "".join(
        f"{q}: " + sh("jobs", "--stats-only", "-a", "-q", q, check=False)
        for q in queues
    ),
)
write_text(
    "cli.jobs.txt",
    sh("jobs", "-a", "-no", "{id.f58} {queue} {state} {result} {nnodes} {ntasks}"),
)
write_text("cli.jobs.json", sh("jobs", "-A", "-a", "--json"))
write_text(
    "cli.resource-list.txt",
    sh(
        "resource",
        "list",
        "-no",
        "{state} {queue} {nnodes} {ncores} {ngpus} {nodelist}",
    ),
)
write_text(
    "cli.resource-list-all.txt",
    sh("resource", "list", "-s", "all", "-no", "{state} {nnodes} {ncores} {ngpus}"),
)
write_text(
    "cli.resource-list-by-queue.txt",
    "".join(
        f"{q}: "
        + sh("resource", "list", "-q", q, "-no", "{state} {nnodes} {ncores} {ngpus}")
        .strip()
        .replace("\n", "; ")
        + "\n"
        for q in queues
    ),
)
write_text(
    "cli.resource-list-all-by-queue.txt",
    "".join(
        f"{q}: "
        + sh("resource", "list", "-q", q, "-s", "all", "-no", "{state} {nnodes} {ncores} {ngpus}")
        .strip()
        + "\n"
        for q in queues
    ),
)
write_text("cli.resource-rlist.txt", sh("resource", "list", "-o", "rlist"))
write_text(
    "cli.resource-status.txt",
    sh("resource", "status", "-no", "{state} {nnodes} {ranks} {nodelist}"),
)
write_text(
    "cli.resource-status-all.txt",
    sh("resource", "status", "-s", "all", "-no", "{state} {nnodes} {ranks} {nodelist}"),
)
write_text("cli.queue-list.txt", sh("queue", "list"))
write_text(
    "cli.module-stats.json",
    json.dumps(
        {m: json.loads(sh("module", "stats", m, check=False) or "null") for m in modules},
        indent=1,
        sort_keys=True,
    )
    + "\n",
)

# --- Last, since it changes the instance: the resource journal ----------
# Its backlog up to the empty response that ends it, then one live event
# (node2 undrained), as the resource-status feed follows it.
undrained = []


def undrain_at_backlog_end(resp):
    if resp.get("events") == [] and not undrained:
        sh("resource", "undrain", "node2")
        undrained.append(True)


def undrain_seen(resp):
    return bool(undrained) and any(e.get("name") == "undrain" for e in resp.get("events", []))


write_json(
    "resource.journal.json",
    stream("resource.journal", {}, undrain_seen, act=undrain_at_backlog_end),
)

print(f"record-fixtures: {len(os.listdir(OUT))} files, {len(modules)} modules")
