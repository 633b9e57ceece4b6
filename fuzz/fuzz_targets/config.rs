//! (g) The configuration file: the input is written as `scepd.toml` in a directory of
//! this process and read with `Config::load`, the public entry point `scepd serve`
//! uses. `SCEPD_DATABASE_URL` should be unset while fuzzing (scripts/fuzz-smoke
//! unsets it).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use scep_server::config::Config;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("scepd-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("temporary directory");
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = dir();
    if std::fs::write(dir.join("scepd.toml"), data).is_err() {
        return;
    }
    match Config::load(dir) {
        Ok(c) => {
            let _ = format!("{c:?}");
        }
        Err(e) => {
            let _ = format!("{e:#}");
        }
    }
});
