"""Sets up flux-accounting in a running instance, makes jobs that it holds
and lets run, then records what the accounting collector and the jobflow
collector read, with flux account's and flux jobs' answers.

Run by scripts/record-accounting-fixtures as `flux python
record-accounting-fixtures.py OUTDIR WORKDIR` inside a one-broker instance.
The file format is described in tests/fixtures/README.md.
"""

import errno
import json
import os
import pwd
import re
import subprocess
import sys
import time

import flux

OUT, WORK = sys.argv[1], sys.argv[2]
DB = os.path.join(WORK, "FluxAccounting.db")
h = flux.Flux()
me = pwd.getpwuid(os.getuid()).pw_name


def sh(*args, check=True):
    """Runs a flux command; returns its standard output."""
    proc = subprocess.run(["flux", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        sys.exit(
            f"record-accounting-fixtures: flux {' '.join(args)}: {proc.stderr.strip()}"
        )
    return proc.stdout


def account(*args):
    return sh("account", "-p", DB, *args)


def submit(*args):
    return sh("submit", *args).strip()


def wait_state(jobid, states, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if sh("jobs", "-no", "{state}", jobid).strip() in states:
            return
        time.sleep(0.1)
    sys.exit(f"record-accounting-fixtures: job {jobid} never reached {states}")


def wait_dependency(jobid, name, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if name in sh("jobs", "-no", "{dependencies}", jobid):
            return
        time.sleep(0.1)
    sys.exit(f"record-accounting-fixtures: job {jobid} never held by {name}")


def error_object(exc):
    code = exc.errno if isinstance(exc, OSError) and exc.errno else errno.EPROTO
    return {"__error__": {"errno": code, "strerror": os.strerror(code), "msg": str(exc)}}


def ask(topic, payload=None):
    try:
        resp = h.rpc(topic, payload if payload is not None else {}, 0).get()
        return resp if resp is not None else {}
    except OSError as exc:
        return error_object(exc)


def stream(topic, payload, until):
    responses = []
    fut = h.rpc(topic, payload, 0, flux.constants.FLUX_RPC_STREAMING)
    while True:
        try:
            resp = fut.get()
        except OSError as exc:
            responses.append(error_object(exc))
            return responses
        responses.append(resp)
        if until(resp):
            return responses
        fut.reset()


def write_json(name, value):
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(value, f, indent=1, sort_keys=True)
        f.write("\n")


def write_text(name, text):
    with open(os.path.join(OUT, name), "w") as f:
        f.write(re.sub(r"\x1b\[[0-9;]*m", "", text))


QUERY = {"name": "mf_priority.so"}

# Before the plugin is loaded: the answer that means "no flux-accounting".
write_json("job-manager.jobtap-query.not-loaded.json", ask("job-manager.jobtap-query", QUERY))

# --- flux-accounting ------------------------------------------------------
account("create-db")
service = subprocess.Popen(["flux", "account-service", "-p", DB, "-t"])
# flux account's commands go through the service: wait until it answers.
deadline = time.time() + 30
while subprocess.run(
    ["flux", "account", "-p", DB, "list-factors"], capture_output=True, check=False
).returncode:
    if time.time() > deadline:
        sys.exit("record-accounting-fixtures: flux account-service never answered")
    time.sleep(0.2)
sh("jobtap", "load", "-r", ".priority-default", "mf_priority.so")

account("add-bank", "root", "1")
for bank in ["physics", "chemistry", "open"]:
    account("add-bank", "--parent-bank=root", bank, "1")
account("add-queue", "batch", "--max-running-jobs=2")
account("add-queue", "debug", "--priority=100", "--max-sched-jobs=4")
account(
    "add-user",
    f"--username={me}",
    f"--userid={os.getuid()}",
    "--bank=physics",
    "--queues=batch,debug",
    "--max-running-jobs=1",
    "--max-active-jobs=10",
)
account("add-user", f"--username={me}", f"--userid={os.getuid()}", "--bank=chemistry", "--queues=batch,debug")
account("add-user", f"--username={me}", f"--userid={os.getuid()}", "--bank=open", "--queues=batch,debug")
account(
    "add-user",
    "--username=alice",
    "--userid=50001",
    "--bank=chemistry",
    "--queues=batch",
    "--max-nodes=4",
    "--max-cores=16",
)
account("add-user", "--username=bob", "--userid=50002", "--bank=physics")
sh("account-priority-update", "-p", DB)

# --- The mix ----------------------------------------------------------------
sh("queue", "start", "--all")
# physics: one running, two held by the association's running-job limit.
first = submit("--setattr=system.bank=physics", "sleep", "inf")
wait_state(first, ["RUN"])
for _ in range(2):
    held = submit("--setattr=system.bank=physics", "sleep", "inf")
    wait_dependency(held, "max-running-jobs-user-limit")
# chemistry in batch: two running, one held by the queue's per-association
# limit.
for _ in range(2):
    wait_state(submit("--setattr=system.bank=chemistry", "sleep", "inf"), ["RUN"])
held = submit("--setattr=system.bank=chemistry", "sleep", "inf")
wait_dependency(held, "max-run-jobs-queue")
# open: one held by its urgency, one waiting for cores (5 of 8 are busy),
# one in the stopped debug queue.
wait_state(submit("--setattr=system.bank=open", "--urgency=0", "sleep", "inf"), ["SCHED"])
wait_state(submit("--setattr=system.bank=open", "-n8", "sleep", "inf"), ["SCHED"])
sh("queue", "stop", "debug")
wait_state(submit("--setattr=system.bank=open", "-q", "debug", "sleep", "inf"), ["SCHED"])
time.sleep(1)

# --- What the collectors read ----------------------------------------------
write_json("job-manager.jobtap-query.json", ask("job-manager.jobtap-query", QUERY))
write_json(
    "job-list.list.json", ask("job-list.list", {"max_entries": 50, "attrs": ["all"]})
)
queues = ask("job-manager.queue-list").get("queues", [])
write_json("job-manager.queue-list.json", {"queues": queues})
write_json(
    "job-manager.queue-status.json",
    {q: ask("job-manager.queue-status", {"name": q}) for q in queues},
)
write_json(
    "job-manager.events-journal.json",
    stream(
        "job-manager.events-journal",
        {"full": True},
        lambda resp: resp.get("id") == -1 or "__error__" in resp,
    ),
)

# --- What the command line says at the same instant -------------------------
write_text("cli.jobs.json", sh("jobs", "-A", "-a", "--json"))
write_text("cli.account-list-users.json", account("list-users", "-j"))
write_text("cli.account-list-queues.json", account("list-queues", "--json"))
write_text("cli.jobtap-query.json", sh("jobtap", "query", "mf_priority.so"))
# The answers name the user the set was recorded as; the tests read names
# from the recorded answers, not from the machine.
write_json("recorded-as.json", {"username": me, "userid": os.getuid()})

sh("cancel", "--all", check=False)
service.terminate()
service.wait()
