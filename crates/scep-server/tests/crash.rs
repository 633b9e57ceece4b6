//! Crash consistency: scepd killed with SIGKILL at random moments under load and
//! restarted. Every certificate a client received is in the store, no serial repeats,
//! and no one-time challenge was honoured twice.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::collections::{HashMap, HashSet};
use std::process::Command;

use common::Server;
use scep::crypto::{KeyType, PrivateKey};
use scep_client::{EnrollOptions, ScepClient};

fn mint(server: &Server, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let out = Command::new("curl")
                .args([
                    "-s",
                    "-u",
                    "ops:operator password",
                    "-X",
                    "POST",
                    &format!("{}/api/v1/challenges", server.base),
                ])
                .output()
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            v["password"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[tokio::test]
async fn sigkill_under_load_loses_nothing_and_honours_no_challenge_twice() {
    let mut server = Server::start(|c| {
        *c = c.replace("password_max = 5", "password_max = 1000").replace("max_failures = 10", "max_failures = 100000")
    });
    server.add_user("ops", "operator password", "enroll");
    // Each challenge is tried twice, by two different keys, so a consumption that
    // did not stick would show as two certificates for one challenge.
    let mut received: HashMap<String, Vec<String>> = HashMap::new();
    let mut seed = u64::from_le_bytes(scep::crypto::random_bytes(8).unwrap().try_into().unwrap());
    for round in 0..3 {
        let challenges = mint(&server, 12);
        let keys: Vec<PrivateKey> = (0..24).map(|_| PrivateKey::generate(KeyType::Rsa2048).unwrap()).collect();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for (n, key) in keys.into_iter().enumerate() {
            let (i, copy) = (n / 2, n % 2);
            let url = server.url();
            let pw = challenges[i].clone();
            let done = done.clone();
            tasks.push(tokio::spawn(async move {
                let r = ScepClient::new(&url)
                    .enroll(&key, &EnrollOptions::new(&format!("CN=r{round}-{i}-{copy}")).challenge(&pw))
                    .await;
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                (pw, r)
            }));
        }
        // Kill at a random moment while requests are in flight: after 2 to 17 answers.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let after = 2 + usize::try_from(seed % 16).unwrap();
        while done.load(std::sync::atomic::Ordering::SeqCst) < after {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        server.kill();
        for t in tasks {
            let (pw, r) = t.await.unwrap();
            if let Ok(e) = r {
                received
                    .entry(pw)
                    .or_default()
                    .push(hex::encode_upper(e.certificate.tbs_certificate().serial_number().as_bytes()));
            }
        }
        let dir = server.stop();
        server = Server::serve(dir);
    }
    let rows = server.certificates();
    let stored: HashSet<String> = rows.iter().map(|r| r["serial"].as_str().unwrap().to_owned()).collect();
    assert_eq!(stored.len(), rows.len(), "a serial repeats");
    for (pw, serials) in &received {
        assert_eq!(serials.len(), 1, "challenge {pw} was honoured {} times", serials.len());
        assert!(stored.contains(&serials[0]), "certificate {} reached a client but is not stored", serials[0]);
    }
    // And the store agrees: no challenge id appears on two certificates.
    let ids: Vec<&str> = rows.iter().filter_map(|r| r["challenge_id"].as_str()).collect();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
    assert!(!received.is_empty(), "no enrollment completed before a kill: the test proved nothing");
    eprintln!("{} certificates received over 3 kills, {} stored", received.len(), rows.len());
}
