//! `flux prometheus`: see [`flux_prometheus_cli`]. Installed as
//! `flux-prometheus` on flux's command path (`flux help` lists it there).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match flux_prometheus_cli::run(&args) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(flux_prometheus_cli::Failure(msg)) => {
            eprintln!("flux-prometheus: {msg}");
            ExitCode::FAILURE
        }
    }
}
