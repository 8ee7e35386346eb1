//! Shared by the benchmark examples: `WAKEUP_SLICE_US=N` in the
//! environment has the process's thread ask for an N µs time slice, as the
//! module's HTTP thread does (`flux::request_wakeup_slice`).
//! The scrape client then leaves its own wait for a core out of what it
//! measures, as a Prometheus on another machine would; the control server
//! gets what the module's thread gets.

pub fn slice_from_env(program: &str) {
    let value = match std::env::var("WAKEUP_SLICE_US") {
        Ok(value) if !value.is_empty() => value,
        _ => return,
    };
    match value.parse::<u64>() {
        Ok(us) => {
            if let Err(err) = flux::request_wakeup_slice(std::time::Duration::from_micros(us)) {
                eprintln!("{program}: WAKEUP_SLICE_US={value}: {err}");
            }
        }
        Err(_) => eprintln!("{program}: WAKEUP_SLICE_US={value} is not a number of µs"),
    }
}
