//! Redis 7 as a peer: `redis-server` with persistence off, driven by `redis-benchmark`
//! (SET and GET, averaged), which pipelines with `-P`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::stats::Measured;

/// A running `redis-server`, killed on drop.
pub struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    /// Starts one on a free port (through `taskset` on the servers' CPUs when pinned); `None` when
    /// `redis-server` is not installed.
    pub fn start(server_cpus: Option<usize>) -> Option<Redis> {
        let port = TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let args = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        .map(String::from);
        let child = crate::spawn_pinned("redis-server", &args, server_cpus)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let redis = Redis { child, port };
        // Ready when it accepts (bounded).
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let until = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            if Instant::now() > until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(redis)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `requests` SET and as many GET over `conns` connections, `pipeline` deep, averaged.
    pub fn measure(&self, conns: usize, pipeline: usize, requests: usize) -> Option<Measured> {
        let rows = self.run("set,get", conns, pipeline, requests)?;
        let mean = |f: fn(&Measured) -> f64| rows.iter().map(f).sum::<f64>() / rows.len() as f64;
        Some(Measured {
            ops_per_s: mean(|m| m.ops_per_s),
            p50_us: mean(|m| m.p50_us),
            p99_us: mean(|m| m.p99_us),
            p999_us: None,
            server_cpu_us_per_op: None,
            client_cpu_us_per_op: None,
        })
    }

    /// One result per test of `tests` (redis-benchmark's `-t`), in its order.
    pub fn run(
        &self,
        tests: &str,
        conns: usize,
        pipeline: usize,
        requests: usize,
    ) -> Option<Vec<Measured>> {
        let out = Command::new("redis-benchmark")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-t", tests])
            .args(["-n", &requests.to_string(), "-c", &conns.to_string()])
            .args(["-P", &pipeline.to_string(), "--csv"])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",...
        let rows: Vec<Vec<f64>> = text
            .lines()
            .skip(1)
            .map(|l| {
                l.split(',')
                    .skip(1)
                    .filter_map(|f| f.trim_matches('"').parse().ok())
                    .collect()
            })
            .filter(|r: &Vec<f64>| r.len() >= 6)
            .collect();
        let measured: Vec<Measured> = rows
            .iter()
            .map(|r| Measured {
                ops_per_s: r[0],
                p50_us: r[3] * 1e3,
                p99_us: r[5] * 1e3,
                p999_us: None,
                server_cpu_us_per_op: None,
                client_cpu_us_per_op: None,
            })
            .collect();
        (!measured.is_empty()).then_some(measured)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
