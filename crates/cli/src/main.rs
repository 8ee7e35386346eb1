//! `flux prometheus`: see [`flux_prometheus_cli`]. Installed as
//! `flux-prometheus` on flux's command path (`flux help` lists it there).

use std::io::{ErrorKind, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match flux_prometheus_cli::run(&args) {
        Ok(out) => match writeln!(std::io::stdout().lock(), "{out}") {
            // A reader that stopped early (`| head`, `| grep -q`) has what
            // it wanted.
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if e.kind() == ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("flux-prometheus: cannot write the output: {e}");
                ExitCode::FAILURE
            }
        },
        Err(flux_prometheus_cli::Failure(msg)) => {
            eprintln!("flux-prometheus: {msg}");
            ExitCode::FAILURE
        }
    }
}
