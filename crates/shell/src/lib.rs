//! The prometheus job-shell plugin: what each job used, node by node,
//! appended to the job's `exec.eventlog` as one `prometheus.usage` event
//! (`flux job eventlog -p exec JOBID` shows it; `flux prometheus jobstats
//! JOBID` reads it), for as long as the job is kept.
//!
//! Every shell of the job, at `shell.start`, notes when its tasks start,
//! what its node was allocated and whether it has a cgroup of its own, and
//! holds itself open (a completion reference) until its figures are
//! delivered; meanwhile it samples its tasks' process trees for their
//! resident memory. At `shell.finish` (its last task has ended) it makes
//! its node's figures ([`measure`]) and sends them to the leader shell,
//! which appends the job's event once every shell has reported, or its wait
//! has run out ([`gather`]).
//!
//! A job opts out with `-o prometheus.usage=false`; `-o
//! prometheus.period=SECONDS` sets the sampling period (10 s). Nothing the
//! plugin meets fails the job: every problem is one log line in the job's
//! output, and the figures are advisory.

mod gather;
mod measure;

use std::cell::RefCell;
use std::rc::Rc;

use flux::{Error, Plugin, Shell, ShellLevel};

flux::shell_plugin_init!(init);

/// The plugin's name, its shell option, and its service between shells.
const NAME: &str = "prometheus";

fn init(plugin: &Plugin) -> Result<(), Error> {
    plugin.set_name(NAME)?;
    let job: gather::State = Rc::new(RefCell::new(None));
    let state = Rc::clone(&job);
    plugin.on("shell.init", move |shell, _| {
        match gather::Job::new(shell) {
            Ok(Some(new)) => *state.borrow_mut() = Some(new),
            Ok(None) => {}
            Err(e) => shell.log(ShellLevel::Warn, &format!("usage not recorded: {e}")),
        }
        // Only a leader with other shells to hear from needs the service.
        if state
            .borrow()
            .as_ref()
            .is_some_and(|job| job.is_leader() && job.shells() > 1)
        {
            gather::serve(shell, &state);
        }
        Ok(())
    })?;
    let state = Rc::clone(&job);
    plugin.on("shell.start", move |shell, _| {
        with_job(shell, &state, gather::start);
        Ok(())
    })?;
    let state = Rc::clone(&job);
    plugin.on("shell.finish", move |shell, _| {
        with_job(shell, &state, gather::finish);
        Ok(())
    })?;
    Ok(())
}

/// Runs `step` on the job, if the plugin follows one; a failure is logged,
/// and the plugin stops following the job.
fn with_job(
    shell: &Shell,
    state: &gather::State,
    step: fn(&Shell, &gather::State) -> Result<(), Error>,
) {
    if state.borrow().is_none() {
        return;
    }
    if let Err(e) = step(shell, state) {
        shell.log(ShellLevel::Warn, &format!("usage not recorded: {e}"));
        if let Some(job) = state.borrow_mut().take() {
            job.abandon(shell);
        }
    }
}
