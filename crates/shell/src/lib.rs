//! The prometheus job-shell plugin: what each job used, node by node,
//! appended to the job's `exec.eventlog` as one `prometheus.usage` event
//! (`flux job eventlog -p exec JOBID` shows it; `flux prometheus jobstats
//! JOBID` reads it), for as long as the job is kept.
//!
//! Every shell of the job reads the job's options as it loads the plugin.
//! At `shell.start` it notes when its tasks start, what its node was
//! allocated and whether it has a cgroup of its own, and holds itself open
//! (a completion reference) until its figures are delivered; meanwhile it
//! samples its tasks' process trees for their resident memory. At
//! `shell.finish` (its last task has ended) it makes its node's figures
//! ([`measure`]) and sends them to the leader shell, which appends the
//! job's event once every shell has reported, or its wait has run out
//! ([`gather`]).
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
    // The shell's job, options and handle are ready while it loads its
    // plugins: a job that opted out gets no callbacks at all.
    let Some(shell) = plugin.shell() else {
        return Ok(());
    };
    let job = match gather::Job::new(&shell) {
        Ok(Some(job)) => job,
        Ok(None) => return Ok(()),
        Err(e) => {
            shell.log(ShellLevel::Warn, &format!("usage not recorded: {e}"));
            return Ok(());
        }
    };
    // Only a leader with other shells to hear from needs the service.
    let serve = job.is_leader() && job.shells() > 1;
    let job: gather::State = Rc::new(RefCell::new(Some(job)));
    if serve {
        gather::serve(&shell, &job);
    }
    let state = Rc::clone(&job);
    plugin.on("shell.start", move |shell, _| {
        with_job(shell, &state, gather::start);
        Ok(())
    })?;
    plugin.on("shell.finish", move |shell, _| {
        with_job(shell, &job, gather::finish);
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
