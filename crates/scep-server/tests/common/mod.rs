//! Starts the real `scepd` binary on 127.0.0.1 with a fresh data directory.
#![allow(dead_code, clippy::unwrap_used, clippy::indexing_slicing)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

pub const SCEPD: &str = env!("CARGO_BIN_EXE_scepd");
pub const PASSPHRASE: &str = "test passphrase, not secret";

/// A running scepd.
pub struct Server {
    child: Child,
    pub dir: tempfile::TempDir,
    pub base: String,
    /// `https://...` when a [tls] listener runs.
    pub tls_base: Option<String>,
    logs: Arc<Mutex<Vec<String>>>,
    /// Environment given to the server, and to the CLI commands run for it.
    env: Vec<(String, String)>,
}

impl Server {
    /// Initialise a data directory, let `configure` edit scepd.toml, then serve.
    pub fn start(configure: impl FnOnce(&mut String)) -> Server {
        Self::start_with_env(configure, &[])
    }

    /// Like [`Server::start`], with extra environment for the server process.
    pub fn start_with_env(configure: impl FnOnce(&mut String), env: &[(&str, &str)]) -> Server {
        Self::serve_with_env(init_dir(configure, env), env)
    }

    /// Serve an existing data directory (after a restart, say).
    pub fn serve(dir: tempfile::TempDir) -> Server {
        Self::serve_with_env(dir, &[])
    }

    /// Serve an existing data directory with extra environment.
    pub fn serve_with_env(dir: tempfile::TempDir, env: &[(&str, &str)]) -> Server {
        let data = dir.path().join("data");
        let mut child = Command::new(SCEPD)
            .args(["serve", "--data-dir", data.to_str().unwrap(), "--listen", "127.0.0.1:0"])
            .env("SCEPD_KEY_PASSPHRASE", PASSPHRASE)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("scepd listening on ") {
                    let _ = tx.send(addr.to_owned());
                }
            }
        });
        let logs = Arc::new(Mutex::new(Vec::new()));
        let l2 = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                l2.lock().unwrap().push(line);
            }
        });
        let tls = std::fs::read_to_string(data.join("scepd.toml")).unwrap().lines().any(|l| l.starts_with("[tls]"));
        let mut base = None;
        let mut tls_base = None;
        while base.is_none() || (tls && tls_base.is_none()) {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(b) if b.starts_with("https://") => tls_base = Some(b),
                Ok(b) => base = Some(b),
                Err(_) => {
                    let _ = child.kill();
                    panic!("scepd did not start: {:?}", logs.lock().unwrap());
                }
            }
        }
        let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Server { child, dir, base: base.unwrap(), tls_base, logs, env }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The NDES SCEP URL.
    pub fn url(&self) -> String {
        format!("{}/certsrv/mscep/mscep.dll", self.base)
    }

    /// `scepd challenge new`.
    pub fn challenge(&self) -> String {
        let out = self.cli(&["challenge", "new", "--data-dir", self.data_dir().to_str().unwrap()]);
        assert!(out.status.success(), "challenge new: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Certificates in the store, via `scepd cert list --json`.
    pub fn certificates(&self) -> Vec<serde_json::Value> {
        let out =
            self.cli(&["cert", "list", "--json", "--limit", "100000", "--data-dir", self.data_dir().to_str().unwrap()]);
        assert!(out.status.success(), "cert list: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).unwrap()
    }

    /// Log lines so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Whether a log line satisfying `pred` appears within two seconds (log lines
    /// arrive through a pipe, a little after the answer they belong to).
    pub fn logged(&self, pred: impl Fn(&str) -> bool) -> bool {
        for _ in 0..40 {
            if self.logs.lock().unwrap().iter().any(|l| pred(l)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Stop the server and keep its data directory.
    pub fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run scepd with the test passphrase.
pub fn scepd(args: &[&str]) -> std::process::Output {
    scepd_env(args, &[])
}

/// Run scepd with the test passphrase and more environment.
pub fn scepd_env(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(SCEPD).args(args).env("SCEPD_KEY_PASSPHRASE", PASSPHRASE).envs(env.iter().copied()).output().unwrap()
}

impl Server {
    /// Run a scepd command with this server's environment (its database).
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        scepd_env(args, &env)
    }

    /// Another instance on a copy of this data directory (the same keys and
    /// configuration) with the same environment.
    pub fn sibling(&self) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        for f in std::fs::read_dir(self.data_dir()).unwrap() {
            let f = f.unwrap();
            if f.file_type().unwrap().is_file() {
                std::fs::copy(f.path(), data.join(f.file_name())).unwrap();
            }
        }
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Server::serve_with_env(dir, &env)
    }

    /// Kill the process at once (SIGKILL).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run scepd with `input` on standard input.
pub fn scepd_stdin(args: &[&str], input: &str, env: &[(&str, &str)]) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(SCEPD)
        .args(args)
        .env("SCEPD_KEY_PASSPHRASE", PASSPHRASE)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

impl Server {
    /// `scepd user add NAME --password-stdin --permissions PERMS`.
    pub fn add_user(&self, name: &str, password: &str, permissions: &str) {
        self.user_add(name, password, permissions, &[]);
    }

    /// `scepd user add NAME --password-stdin --permissions PERMS --ntlm`: also NTLM.
    pub fn add_ntlm_user(&self, name: &str, password: &str, permissions: &str) {
        self.user_add(name, password, permissions, &["--ntlm"]);
    }

    fn user_add(&self, name: &str, password: &str, permissions: &str, extra: &[&str]) {
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let dir = self.data_dir();
        let mut args = vec!["user", "add", name, "--password-stdin", "--permissions", permissions];
        args.extend_from_slice(extra);
        args.extend(["--data-dir", dir.to_str().unwrap()]);
        let out = scepd_stdin(&args, &format!("{password}\n"), &env);
        assert!(out.status.success(), "user add {extra:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// The admin page URL.
    pub fn admin_url(&self) -> String {
        format!("{}/certsrv/mscep_admin/", self.base)
    }
}

/// Whether micromdm's scepclient is installed (CI installs it; `.ci/run` fails without it).
pub fn scepclient() -> &'static str {
    "scepclient"
}

/// Run scepclient in a fresh directory; returns (success, combined output, dir).
pub fn run_scepclient(url: &str, cn: &str, challenge: &str, extra: &[&str]) -> (bool, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(scepclient())
        .current_dir(dir.path())
        .args(["-server-url", url, "-private-key", "key.pem", "-cn", cn, "-challenge", challenge])
        .args(extra)
        .output()
        .expect("scepclient is not installed: apt-get install -y scep (.ci/run does this)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success() && dir.path().join("client.pem").exists(), text, dir)
}

/// `openssl verify -CAfile ca cert`.
pub fn openssl_verify(ca: &Path, cert: &Path) -> bool {
    let out = Command::new("openssl").args(["verify", "-CAfile"]).arg(ca).arg(cert).output().unwrap();
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains(": OK")
}

/// A fresh, empty PostgreSQL database for one test, on the server that
/// `SCEPD_TEST_POSTGRES_URL` names (`.ci/run` starts one). Without it the test is
/// skipped, unless `SCEPD_REQUIRE_POSTGRES=1`, which `.ci/run` sets: then it fails.
pub async fn postgres_database() -> Option<String> {
    let Ok(base) = std::env::var("SCEPD_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("SCEPD_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "SCEPD_TEST_POSTGRES_URL is not set: run the tests with .ci/run (it starts PostgreSQL)"
        );
        eprintln!("skipped: SCEPD_TEST_POSTGRES_URL is not set (.ci/run sets it)");
        return None;
    };
    use sqlx::Executor;
    let name = format!("t_{}", hex::encode(scep::crypto::random_bytes(6).unwrap()));
    let pool = sqlx::postgres::PgPool::connect(&base).await.unwrap();
    pool.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.unwrap();
    pool.close().await;
    let (prefix, _) = base.rsplit_once('/').unwrap();
    Some(format!("{prefix}/{name}"))
}

/// Enroll `CN=cn` with `challenge` through the `scep` client library (a fresh RSA key).
pub async fn enroll(
    server: &Server,
    cn: &str,
    challenge: &str,
) -> Result<scep_client::Enrolled, scep_client::ScepError> {
    let key = scep::crypto::PrivateKey::generate(scep::crypto::KeyType::Rsa2048).unwrap();
    let options = scep_client::EnrollOptions::new(&format!("CN={cn}")).challenge(challenge);
    scep_client::ScepClient::new(&server.url()).enroll(&key, &options).await
}

/// `scepd init` in a new temporary directory (its `data`), then `configure` edits scepd.toml.
fn init_dir(configure: impl FnOnce(&mut String), env: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = scepd_env(&["init", "--data-dir", data.to_str().unwrap()], env);
    assert!(out.status.success(), "init failed: {}", String::from_utf8_lossy(&out.stderr));
    let cfg = data.join("scepd.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    configure(&mut text);
    std::fs::write(&cfg, text).unwrap();
    dir
}

/// Initialise a data directory, let `configure` edit scepd.toml, run `scepd serve` and
/// expect it to exit with an error within 30 s; returns its stderr.
pub fn serve_fails(configure: impl FnOnce(&mut String), env: &[(&str, &str)]) -> String {
    let dir = init_dir(configure, env);
    let data = dir.path().join("data");
    let mut child = Command::new(SCEPD)
        .args(["serve", "--data-dir", data.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .env("SCEPD_KEY_PASSPHRASE", PASSPHRASE)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..300 {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            assert!(!status.success(), "scepd serve exited successfully: {err}");
            return err;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("scepd serve started with a configuration it should refuse");
}
