//! The HTTP thread under hostile clients (one test in its own binary, so
//! the thread count it reads is this test's alone): 1,000 connections that
//! never send a byte, 200 that trickle their headers a byte at a time and a
//! few half-closed ones do not hold up a normal scrape, and the server adds
//! no thread for any of them.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flux_prometheus::exposition::Shared;
use flux_prometheus::http::{Server, BCRYPT_THREADS};
use flux_prometheus::render::Rendered;

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// Lifts the soft limit on open files to the hard one: the clients and the
/// server share this process, 2,400 descriptors and more.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls on a valid struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn scrape(addr: SocketAddr) -> (Duration, String) {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    (started.elapsed(), out)
}

#[test]
fn idle_and_slow_clients_neither_slow_a_scrape_nor_add_threads() {
    raise_fd_limit();
    let before = threads();
    let shared = Shared::new("test".into());
    shared.publish(
        Rendered::verbatim(format!("{}\n", "flux_jobs{state=\"run\"} 3\n".repeat(2000))),
        true,
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = Server::start(listener, Arc::clone(&shared)).unwrap();
    let addr = server.local_addr();
    let server_threads = threads() - before;

    let idle: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    let mut slow: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    let half_closed: Vec<TcpStream> = (0..10)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nHo").unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            s
        })
        .collect();
    // One client thread trickles every slow connection's headers, a byte
    // each per round, never finishing them.
    let stop = Arc::new(AtomicBool::new(false));
    let trickle = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let request = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ";
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                for s in &mut slow {
                    let _ = s.write_all(&[*request.get(i).unwrap_or(&b'a')]);
                }
                i += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let mut times = Vec::new();
    for _ in 0..20 {
        let (took, response) = scrape(addr);
        assert!(
            response.starts_with("HTTP/1.1 200"),
            "no answer within 5 s while the hostile clients hung on: {response:?}"
        );
        times.push(took);
    }
    let during = threads() - before - 1; // less the trickle thread
    stop.store(true, Ordering::Relaxed);
    trickle.join().unwrap();
    // A scrape queued behind the hostile connections would wait for their
    // 10 s header timeout; answered at all, it was not queued. How fast it
    // is answered is a benchmark's question, not this test's.
    times.sort();
    let slowest = times[times.len() - 1];
    assert!(
        slowest < Duration::from_secs(5),
        "slowest of 20 scrapes took {slowest:?} (median {:?}): held up by the hostile clients",
        times[times.len() / 2]
    );
    assert_eq!(server_threads, 1, "the server runs on one thread");
    assert!(
        during <= 1 + BCRYPT_THREADS,
        "the server had {during} threads under 1,210 hostile connections"
    );
    drop((idle, half_closed));
}
