//! Scrape latency at a fixed request rate over one keep-alive connection,
//! the way Prometheus scrapes (wrk measures only at saturation).
//!
//!   cargo run --release --example scrape_latency -- HOST:PORT [COUNT] [RATE_PER_SEC] [PATH] [gzip]
//!
//! With `gzip`, each request says `Accept-Encoding: gzip`, as Prometheus's
//! do.
//! Prints the median, p90, p99, p99.9 and maximum latency of COUNT requests
//! (default 10000) sent at RATE_PER_SEC (default 100; 0 = back to back).
//! With `WAKEUP_SLICE_US=N`, the client asks for an N µs time slice
//! (examples/common/wakeup.rs).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[path = "common/wakeup.rs"]
mod wakeup;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(addr) = args.get(1) else {
        eprintln!("usage: scrape_latency HOST:PORT [COUNT] [RATE_PER_SEC] [PATH]");
        std::process::exit(2);
    };
    let count: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let rate: f64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(100.0);
    let path = args.get(4).map(String::as_str).unwrap_or("/metrics");
    let gzip = args.get(5).is_some_and(|a| a == "gzip");
    wakeup::slice_from_env("scrape_latency");
    let stream = TcpStream::connect(addr).unwrap_or_else(|e| {
        eprintln!("scrape_latency: cannot connect to {addr}: {e}");
        std::process::exit(1);
    });
    stream.set_nodelay(true).ok();
    let mut writer = stream.try_clone().expect("clone stream");
    let mut reader = BufReader::new(stream);
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{}\r\n",
        if gzip {
            "Accept-Encoding: gzip\r\n"
        } else {
            ""
        }
    );
    let interval = if rate > 0.0 {
        Duration::from_secs_f64(1.0 / rate)
    } else {
        Duration::ZERO
    };
    let mut latencies = Vec::with_capacity(count);
    let mut body_bytes = 0;
    let start = Instant::now();
    for i in 0..count {
        let due = start + interval * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let t0 = Instant::now();
        writer.write_all(request.as_bytes()).expect("send request");
        let mut length = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line).expect("read header");
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().expect("content-length");
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).expect("read body");
        latencies.push(t0.elapsed());
        body_bytes = length;
    }
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    println!(
        "{count} scrapes of {path} ({body_bytes} bytes{}) at {}/s: median {:?}  p90 {:?}  p99 {:?}  p99.9 {:?}  max {:?}",
        if gzip { ", gzip" } else { "" },
        if rate > 0.0 { rate.to_string() } else { "max".into() },
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(0.999),
        latencies[latencies.len() - 1]
    );
}
