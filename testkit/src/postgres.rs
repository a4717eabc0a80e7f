//! A throwaway PostgreSQL server for tests: a fresh cluster in a temporary directory, listening
//! on a Unix socket in that directory and on `127.0.0.1:<port>`, stopped and removed on drop.
//!
//! The server comes from Debian's `postgresql` package (`/usr/lib/postgresql/<version>/bin`).
//! Under `CI` a missing server fails the test; elsewhere the test skips with a message, as for a
//! missing recording ([`crate::data::require`]). PostgreSQL refuses to run as root, so when the
//! tests run as root the cluster is made and run as the `postgres` user the package creates
//! (through `runuser`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A running throwaway cluster. Its superuser is `pinion`, with no password (trust
/// authentication on the socket and on the loopback address only).
#[derive(Debug)]
pub struct PgServer {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    tls: bool,
}

/// The newest installed server's `bin` directory.
fn server_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A free TCP port on the loopback address (bound and released; good enough for a test).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl PgServer {
    /// Starts a cluster, or `None` after a skip message when no server is installed outside CI.
    ///
    /// # Panics
    /// When the server is missing under `CI`, or the cluster cannot be made or started.
    pub fn start(tag: &str) -> Option<Self> {
        Self::start_with(tag, None)
    }

    /// [`PgServer::start`] with TLS on its TCP listener: `(certificate chain PEM, private key
    /// PEM)`. Clients may still connect without TLS (trust authentication either way).
    ///
    /// # Panics
    /// As [`PgServer::start`].
    pub fn start_tls(tag: &str, cert_pem: &str, key_pem: &str) -> Option<Self> {
        Self::start_with(tag, Some((cert_pem, key_pem)))
    }

    fn start_with(tag: &str, tls: Option<(&str, &str)>) -> Option<Self> {
        let Some(bin) = server_bin() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set and PostgreSQL is not installed (Debian package `postgresql`)"
            );
            eprintln!("skipping: PostgreSQL is not installed (Debian package `postgresql`)");
            return None;
        };
        // Short: the socket's path must fit sun_path (108 bytes).
        let dir = std::env::temp_dir().join(format!("pg-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("cluster directory");
        let as_postgres = is_root();
        let mut server = Self {
            dir,
            bin,
            port: free_port(),
            as_postgres,
            tls: tls.is_some(),
        };
        if let Some((cert, key)) = tls {
            use std::os::unix::fs::PermissionsExt;
            for (name, text) in [("server.crt", cert), ("server.key", key)] {
                let path = server.dir.join(name);
                std::fs::write(&path, text).expect("TLS file");
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .expect("TLS file mode");
            }
        }
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&server.dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown of {} to postgres", server.dir.display());
        }
        let data = server.dir.join("data");
        let init = server
            .command("initdb")
            .args([
                "-A",
                "trust",
                "-U",
                "pinion",
                "--no-sync",
                "-E",
                "UTF8",
                "-D",
            ])
            .arg(&data)
            .stdout(Stdio::null())
            .output()
            .expect("initdb runs");
        assert!(
            init.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        server.start_on(server.port);
        Some(server)
    }

    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    /// Starts (or restarts) the server on `port`.
    fn start_on(&mut self, port: u16) {
        self.port = port;
        let mut options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.dir.display()
        );
        if self.tls {
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={0}/server.crt -c ssl_key_file={0}/server.key",
                self.dir.display()
            ));
        }
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .stdout(Stdio::null())
            .output()
            .expect("pg_ctl runs");
        if !out.status.success() {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            panic!(
                "the PostgreSQL server did not start: {}\n{log}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// Stops the server (fast shutdown); [`PgServer::restart`] brings it back on the same port.
    pub fn stop(&self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "fast", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Starts the stopped server again, on the same port.
    pub fn restart(&mut self) {
        self.start_on(self.port);
    }

    /// Its loopback TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory its Unix socket is in.
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// A connection string for its Unix socket (key/value form), database `postgres`.
    pub fn url(&self) -> String {
        format!(
            "host={} port={} user=pinion dbname=postgres",
            self.dir.display(),
            self.port
        )
    }

    /// Runs `sql` with `psql` (tab-separated, unaligned, no headers) and returns its output.
    ///
    /// # Panics
    /// When `psql` fails.
    pub fn psql(&self, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "pinion",
                "-d",
                "postgres",
                "-c",
                sql,
            ])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the server answers (after a restart).
    pub fn wait_ready(&self, within: Duration) -> bool {
        let until = Instant::now() + within;
        while Instant::now() < until {
            let ok = Command::new(self.bin.join("pg_isready"))
                .arg("-h")
                .arg(&self.dir)
                .args(["-p", &self.port.to_string()])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
