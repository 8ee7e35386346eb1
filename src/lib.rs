//! flux-prometheus: a Flux broker module that exports job, queue, resource
//! and broker metrics to Prometheus from an embedded HTTP exporter thread.
//!
//! Layout: the `flux` crate (crates/flux) holds every `unsafe` line and
//! libflux call; the [`collectors`] gather [`state`] on the reactor thread;
//! [`render`] turns state into text; [`http`] serves the newest
//! [`exposition`] snapshot.

// Every `unsafe` line is in the flux crate, which hands this one safe types.
#![deny(unsafe_code)]

/// The module's and the command's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Every Rust allocation of the module, on the reactor thread and the HTTP
/// thread alike, is counted here, so that `flux module stats prometheus` can
/// say how much memory the module holds. The broker's RSS cannot: it mixes
/// the module with the scheduler, whose resource graph is 9 GB at 16,384
/// nodes under Fluxion and moves by tens of MB on its own. (The counter is
/// two relaxed atomic operations per allocation.)
///
/// The allocations come from mimalloc, linked into the module, rather than
/// from the broker's glibc malloc. glibc gives a process at most 8 arenas
/// per core; a broker on a few cores has more threads than that, so the
/// module's reactor thread can share an arena with a busy module's, and
/// then each allocation of more than a few hundred bytes walks that
/// module's free chunks. Measured at 16 arenas (2 cores) under 10,000 jobs a
/// minute: 87 % of the thread's time in `_int_malloc`,
/// `malloc_consolidate` and `unlink_chunk`, and a publish's p99 of 38-56 ms
/// CPU against 0.4-0.7 ms with an arena of its own (BENCHMARKS.md, "The
/// module's own heap"). mimalloc's heaps are per thread. Its memory is given
/// back when the module is unloaded (the flux crate's `run_module_main`
/// sees to it).
#[global_allocator]
static HEAP: cap::Cap<Allocator> = cap::Cap::new(ALLOCATOR, usize::MAX);

#[cfg(not(fuzzing))]
type Allocator = mimalloc::MiMalloc;
#[cfg(not(fuzzing))]
const ALLOCATOR: Allocator = mimalloc::MiMalloc;
// Under cargo-fuzz, glibc's malloc, which the sanitizers intercept.
#[cfg(fuzzing)]
type Allocator = std::alloc::System;
#[cfg(fuzzing)]
const ALLOCATOR: Allocator = std::alloc::System;

/// Bytes the module's Rust code holds allocated now.
pub fn heap_bytes() -> usize {
    HEAP.allocated()
}

/// This host's name, as the module's URL and the command's walk use it.
pub fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

pub mod access;
pub mod announce;
pub mod collectors;
pub mod config;
pub mod exposition;
pub mod gpu;
pub mod http;
pub mod model;
pub mod module;
pub mod names;
pub mod node;
pub mod reactor;
pub mod reference;
pub mod relay;
pub mod render;
pub mod sampler;
pub mod state;
pub mod stats;

// `mod_main`, the one symbol the module's shared object exports.
flux::module_main!(crate::module::start);

#[cfg(test)]
mod tests {
    use super::heap_bytes;

    #[test]
    fn heap_bytes_follows_what_the_module_holds() {
        // Large enough that other tests' allocations on their threads
        // cannot hide it.
        const SIZE: usize = 256 << 20;
        let before = heap_bytes();
        let held = vec![1u8; SIZE];
        let during = heap_bytes();
        assert!(during >= before + SIZE / 2, "{before} then {during}");
        drop(held);
        assert!(heap_bytes() < during - SIZE / 2);
    }
}
