//! The servers the `scep` command is tested against: the real `scepd` from the same
//! target directory, and micromdm's `scepserver` (Debian package `scep`).
#![allow(dead_code, clippy::unwrap_used, clippy::indexing_slicing)]

pub mod proxy;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const SCEP: &str = env!("CARGO_BIN_EXE_scep");
pub const PASSPHRASE: &str = "test passphrase, not secret";
pub const USER: &str = "mdm";
pub const PASSWORD: &str = "correct horse battery";

/// `scepd`, built into the same target directory by `cargo test --workspace`.
pub fn scepd_path() -> PathBuf {
    let path = Path::new(SCEP).parent().unwrap().join("scepd");
    assert!(
        path.exists(),
        "{} is missing: build it first with `cargo build -p scep-server` (cargo test --workspace does)",
        path.display()
    );
    path
}

/// A running scepd with a fresh data directory.
pub struct Scepd {
    child: Child,
    pub dir: tempfile::TempDir,
    pub base: String,
    /// `https://...` when scepd.toml has a [tls] listener.
    pub tls_base: Option<String>,
}

impl Scepd {
    /// `scepd init`, let `configure` edit scepd.toml, `scepd serve` on 127.0.0.1:0,
    /// and a user with enroll permission for the admin page.
    pub fn start(configure: impl FnOnce(&mut String)) -> Scepd {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let out = scepd(&["init", "--data-dir", data.to_str().unwrap()], None);
        assert!(out.status.success(), "scepd init: {}", String::from_utf8_lossy(&out.stderr));
        let cfg = data.join("scepd.toml");
        let mut text = std::fs::read_to_string(&cfg).unwrap();
        configure(&mut text);
        std::fs::write(&cfg, text).unwrap();
        let mut child = Command::new(scepd_path())
            .args(["serve", "--data-dir", data.to_str().unwrap(), "--listen", "127.0.0.1:0"])
            .env("SCEPD_KEY_PASSPHRASE", PASSPHRASE)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("scepd listening on ") {
                    let _ = tx.send(addr.to_owned());
                }
            }
        });
        let tls = std::fs::read_to_string(&cfg).unwrap().lines().any(|l| l.starts_with("[tls]"));
        let (mut base, mut tls_base) = (None, None);
        while base.is_none() || (tls && tls_base.is_none()) {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(b) if b.starts_with("https://") => tls_base = Some(b),
                Ok(b) => base = Some(b),
                Err(_) => {
                    let _ = child.kill();
                    panic!("scepd did not start within 30 s");
                }
            }
        }
        let server = Scepd { child, dir, base: base.unwrap(), tls_base };
        let data = server.data_dir();
        let out = scepd(
            &["user", "add", USER, "--password-stdin", "--permissions", "enroll", "--data-dir", data.to_str().unwrap()],
            Some(&format!("{PASSWORD}\n")),
        );
        assert!(out.status.success(), "scepd user add: {}", String::from_utf8_lossy(&out.stderr));
        server
    }

    /// `scepd user add NAME --password-stdin --permissions enroll --ntlm`: a user that
    /// can also log in with NTLM.
    pub fn add_ntlm_user(&self, name: &str, password: &str) {
        let data = self.data_dir();
        let data = data.to_str().unwrap();
        let args = ["user", "add", name, "--password-stdin", "--permissions", "enroll", "--ntlm", "--data-dir", data];
        let out = scepd(&args, Some(&format!("{password}\n")));
        assert!(out.status.success(), "scepd user add --ntlm: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// The address of the plain HTTP listener.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.base.trim_start_matches("http://").parse().unwrap()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The NDES SCEP URL.
    pub fn url(&self) -> String {
        format!("{}/certsrv/mscep/mscep.dll", self.base)
    }

    /// The NDES admin page.
    pub fn admin_url(&self) -> String {
        format!("{}/certsrv/mscep_admin/", self.base)
    }

    /// `scepd challenge new`.
    pub fn challenge(&self) -> String {
        let out = scepd(&["challenge", "new", "--data-dir", self.data_dir().to_str().unwrap()], None);
        assert!(out.status.success(), "scepd challenge new: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// The CA certificate file.
    pub fn ca_pem(&self) -> PathBuf {
        self.data_dir().join("ca.pem")
    }

    /// Run another scepd subcommand on this data directory.
    pub fn admin(&self, args: &[&str]) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        let data = self.data_dir();
        all.extend(["--data-dir", data.to_str().unwrap()]);
        scepd(&all, None)
    }
}

impl Drop for Scepd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn scepd(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(scepd_path())
        .args(args)
        .env("SCEPD_KEY_PASSPHRASE", PASSPHRASE)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

/// micromdm's scepserver with a fixed challenge, on a free port. It binds every
/// interface (it has no bind flag) and is stopped by its PID when dropped.
pub struct Micromdm {
    child: Child,
    _dir: tempfile::TempDir,
    pub url: String,
}

pub const MICROMDM_CHALLENGE: &str = "micromdm-fixed-secret";

impl Micromdm {
    pub fn start() -> Micromdm {
        let dir = tempfile::tempdir().unwrap();
        let depot = dir.path().join("depot");
        let out = Command::new("scepserver")
            .args(["ca", "-init", "-depot", depot.to_str().unwrap(), "-keySize", "2048"])
            .output()
            .expect("scepserver is not installed: apt-get install -y scep (.ci/run does this)");
        assert!(out.status.success(), "scepserver ca -init: {}", String::from_utf8_lossy(&out.stderr));
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("scepserver")
            .args(["-depot", depot.to_str().unwrap(), "-port", &port.to_string()])
            .args(["-challenge", MICROMDM_CHALLENGE, "-allowrenew", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Micromdm { child, _dir: dir, url: format!("http://127.0.0.1:{port}/scep") };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "scepserver did not listen on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }
}

impl Drop for Micromdm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `scep ARGS` with extra environment and standard input; (exit code, stdout, stderr).
pub fn scep(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(SCEP)
        .args(args)
        .env_remove("SCEP_PASSWORD")
        .env_remove("SCEP_CHALLENGE")
        .env_remove("SCEP_P12_PASSWORD")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run `scep ARGS` and parse its standard output as JSON.
pub fn scep_json(args: &[&str], env: &[(&str, &str)]) -> (i32, serde_json::Value) {
    let (code, out, err) = scep(args, env, None);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}\nstderr: {err}"));
    (code, v)
}

/// The step of a `scep check --json` report by name.
pub fn step<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name:?} in {report}"))
}

/// `openssl ARGS`; (success, stdout + stderr).
pub fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").args(args).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}
