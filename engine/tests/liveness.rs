//! Liveness seen from outside the process, end to end with the `pinion` binary: the test plays
//! systemd's part on a notification socket of its own, and checks `READY=1`, the periodic
//! `WATCHDOG=1`, and that the pings stop when a stage thread stalls (the
//! `PINION_TEST_STALL` hook wedges one stage part-way through the run).

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::sim::TempDir;

/// The watchdog interval the tests give: pings are due every half of it.
const WATCHDOG_USEC: u64 = 400_000;

/// `pinion replay` of the synthetic market, paced to last about `seconds`, with `sets` as
/// further `--set` overrides and `env` in its environment.
fn replay(seconds: f64, sets: &[&str], env: &[(&str, &str)]) -> Child {
    let rate = 2000.0;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pinion"));
    cmd.arg("replay")
        .arg("--set")
        .arg(format!("pacing.rate={rate}"))
        .arg("--set")
        .arg(format!("synthetic.records={}", (seconds * rate) as u64))
        .arg("--set")
        .arg("runtime.progress=false");
    for s in sets {
        cmd.arg("--set").arg(s);
    }
    cmd.env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .env_remove("PINION_TEST_STALL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pinion runs")
}

/// Plays systemd's part: a datagram socket in `dir`, and what arrives on it, with when.
struct Manager {
    socket: UnixDatagram,
    path: String,
    started: Instant,
}

impl Manager {
    fn new(dir: &TempDir) -> Self {
        let path = dir.0.join("notify");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        Self {
            socket,
            path: path.to_str().expect("utf-8").to_owned(),
            started: Instant::now(),
        }
    }

    /// Every notification until `until` has passed or `child` has exited, with its time since
    /// the manager started.
    fn collect(&self, child: &mut Child, until: Duration) -> Vec<(Duration, String)> {
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        while self.started.elapsed() < until {
            match self.socket.recv(&mut buf) {
                Ok(n) => got.push((
                    self.started.elapsed(),
                    String::from_utf8_lossy(&buf[..n]).into_owned(),
                )),
                Err(_) => {
                    if matches!(child.try_wait(), Ok(Some(_))) {
                        break;
                    }
                }
            }
        }
        got
    }
}

fn times_of(got: &[(Duration, String)], what: &str) -> Vec<Duration> {
    got.iter()
        .filter(|(_, m)| m == what)
        .map(|(t, _)| *t)
        .collect()
}

/// What the process printed, stdout and stderr, once it has exited.
fn output_of(mut child: Child) -> String {
    let _ = child.wait();
    let mut s = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut o, &mut s);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut s);
    }
    s
}

#[test]
fn ready_then_a_ping_every_half_interval_then_stopping() {
    let dir = TempDir::new("watchdog");
    let manager = Manager::new(&dir);
    let usec = WATCHDOG_USEC.to_string();
    let mut child = replay(
        3.0,
        &["watchdog.enabled=true"],
        &[("NOTIFY_SOCKET", &manager.path), ("WATCHDOG_USEC", &usec)],
    );
    let got = manager.collect(&mut child, Duration::from_secs(20));
    let status = child.wait().expect("pinion exits");
    let stderr = output_of(child);
    assert!(status.success(), "{stderr}");
    assert_eq!(
        got.first().map(|(_, m)| m.as_str()),
        Some("READY=1"),
        "{got:?}"
    );
    assert_eq!(
        got.last().map(|(_, m)| m.as_str()),
        Some("STOPPING=1"),
        "{got:?}"
    );
    let pings = times_of(&got, "WATCHDOG=1");
    // About 3 s at one ping per 200 ms.
    assert!(pings.len() >= 10, "{} pings: {got:?}", pings.len());
    let half = Duration::from_micros(WATCHDOG_USEC / 2);
    for w in pings.windows(2) {
        assert!(
            w[1] - w[0] < half + Duration::from_millis(150),
            "a gap of {:?} between pings: {got:?}",
            w[1] - w[0]
        );
    }
    assert!(stderr.contains("systemd watchdog (400 ms):"), "{stderr}");
}

#[test]
fn a_stalled_stage_stops_the_pings() {
    let dir = TempDir::new("watchdog-stall");
    let manager = Manager::new(&dir);
    let usec = WATCHDOG_USEC.to_string();
    // The book stage wedges 1 s in, on a run meant to last 10 s.
    let mut child = replay(
        10.0,
        &["watchdog.enabled=true"],
        &[
            ("NOTIFY_SOCKET", &manager.path),
            ("WATCHDOG_USEC", &usec),
            ("PINION_TEST_STALL", "book:1000"),
        ],
    );
    let got = manager.collect(&mut child, Duration::from_secs(4));
    let _ = child.kill();
    let _ = output_of(child);
    assert_eq!(
        got.first().map(|(_, m)| m.as_str()),
        Some("READY=1"),
        "{got:?}"
    );
    let pings = times_of(&got, "WATCHDOG=1");
    assert!(pings.len() >= 3, "pings before the stall: {got:?}");
    let last = *pings.last().expect("a ping");
    // READY came at about the start; the stall is 1 s later, seen within one period.
    let ready = got[0].0;
    assert!(
        last < ready + Duration::from_millis(1000 + 2 * WATCHDOG_USEC / 2000 + 300),
        "pings went on after the stall: last at {last:?}, ready at {ready:?}: {got:?}"
    );
    assert!(
        Duration::from_secs(4) - last > Duration::from_micros(WATCHDOG_USEC * 3),
        "the last ping came too late to show the silence: {got:?}"
    );
}

#[test]
fn without_a_notify_socket_nothing_is_sent_and_the_run_says_so() {
    let child = replay(0.5, &["watchdog.enabled=true"], &[]);
    let stderr = output_of(child);
    assert!(
        stderr.contains("$NOTIFY_SOCKET is unset"),
        "no note about the missing socket: {stderr}"
    );
}

/// A local HTTPS server that answers every GET with 200 and notes each request's path and
/// time: the far end of the heartbeat.
struct PingServer {
    url: String,
    ca_file: std::path::PathBuf,
    hits: std::sync::Arc<std::sync::Mutex<Vec<(Instant, String)>>>,
}

impl PingServer {
    fn start(dir: &TempDir) -> Self {
        use pinion_net::rustls::{ServerConnection, StreamOwned};
        use std::io::{BufRead as _, BufReader, Write as _};
        let tls = pinion_exchange_sim::SelfSignedTls::generate(&["127.0.0.1"])
            .expect("a test certificate");
        let ca_file = dir.0.join("ping-ca.pem");
        std::fs::write(&ca_file, &tls.certificate_pem).expect("write the CA");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!(
            "https://127.0.0.1:{}/ping/3f2a",
            listener.local_addr().expect("addr").port()
        );
        let hits = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = std::sync::Arc::clone(&hits);
        std::thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                let config = std::sync::Arc::clone(&tls.server_config);
                let seen = std::sync::Arc::clone(&seen);
                std::thread::spawn(move || {
                    let Ok(conn) = ServerConnection::new(config) else {
                        return;
                    };
                    let mut stream = BufReader::new(StreamOwned::new(conn, tcp));
                    // One request after another on the kept-alive connection.
                    loop {
                        let mut line = String::new();
                        if stream.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let target = line.split(' ').nth(1).unwrap_or("").to_owned();
                        let method = line.split(' ').next().unwrap_or("").to_owned();
                        loop {
                            let mut header = String::new();
                            if stream.read_line(&mut header).unwrap_or(0) == 0 {
                                return;
                            }
                            if header == "\r\n" {
                                break;
                            }
                        }
                        if let Ok(mut h) = seen.lock() {
                            h.push((Instant::now(), format!("{method} {target}")));
                        }
                        let out = stream.get_mut();
                        if out
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
                            .and_then(|()| out.flush())
                            .is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        Self { url, ca_file, hits }
    }

    fn hits(&self) -> Vec<(Instant, String)> {
        self.hits.lock().map(|h| h.clone()).unwrap_or_default()
    }

    fn sets(&self, period_s: f64) -> Vec<String> {
        vec![
            format!("heartbeat.url=\"{}\"", self.url),
            format!("heartbeat.period_s={period_s}"),
            format!("heartbeat.ca_file=\"{}\"", self.ca_file.display()),
        ]
    }
}

#[test]
fn the_heartbeat_pings_every_period_while_the_engine_runs() {
    let dir = TempDir::new("heartbeat");
    let server = PingServer::start(&dir);
    let sets = server.sets(0.2);
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    let started = Instant::now();
    let child = replay(3.0, &sets, &[]);
    let out = output_of(child);
    let hits = server.hits();
    assert!(hits.len() >= 10, "{} pings in about 3 s: {out}", hits.len());
    assert!(hits.iter().all(|(_, r)| r == "GET /ping/3f2a"), "{hits:?}");
    for w in hits.windows(2) {
        assert!(
            w[1].0 - w[0].0 < Duration::from_millis(400),
            "a gap of {:?}",
            w[1].0 - w[0].0
        );
    }
    assert!(
        hits[0].0 - started < Duration::from_secs(5),
        "the first ping came late"
    );
    assert!(out.contains("0 failed, 0 withheld"), "{out}");
}

#[test]
fn the_heartbeat_stops_when_a_stage_stalls() {
    let dir = TempDir::new("heartbeat-stall");
    let server = PingServer::start(&dir);
    let sets = server.sets(0.2);
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    let mut child = replay(10.0, &sets, &[("PINION_TEST_STALL", "book:1000")]);
    // Pings begin, then the book stage wedges 1 s in.
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.hits().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_secs(3));
    let _ = child.kill();
    let _ = output_of(child);
    let hits = server.hits();
    assert!(hits.len() >= 3, "pings before the stall: {}", hits.len());
    let first = hits[0].0;
    let last = hits[hits.len() - 1].0;
    assert!(
        last - first < Duration::from_millis(1600),
        "pings went on for {:?} after the first, past the stall",
        last - first
    );
}
