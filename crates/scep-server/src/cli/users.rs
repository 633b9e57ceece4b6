//! `scepd user ...`.

use std::io::BufRead;

use anyhow::{Context, bail};

use super::{UserCommand, open_store};
use crate::accounts::{Permission, hash_password};
use crate::authority::unix;

pub(super) async fn run(cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add { dir, name, password_stdin: _, permissions } => {
            check_name(&name)?;
            let perms: Vec<String> =
                Permission::parse_list(&permissions)?.iter().map(|p| p.name().to_owned()).collect();
            let store = open_store(&dir.data_dir).await?;
            let hash = hash_password(&read_password()?)?;
            if !store.add_user(&name, &hash, &perms, unix(std::time::SystemTime::now())).await? {
                bail!("user {name:?} exists; use scepd user passwd to change the password");
            }
            eprintln!("user {name} added with permissions {}", perms.join(","));
        }
        UserCommand::List { dir } => {
            let store = open_store(&dir.data_dir).await?;
            for u in store.list_users().await? {
                println!("{}\t{}", u.name, u.permissions.join(","));
            }
        }
        UserCommand::Remove { dir, name } => {
            let store = open_store(&dir.data_dir).await?;
            if !store.remove_user(&name).await? {
                bail!("no user {name:?}");
            }
            eprintln!("user {name} removed");
        }
        UserCommand::Passwd { dir, name, password_stdin: _ } => {
            let store = open_store(&dir.data_dir).await?;
            let hash = hash_password(&read_password()?)?;
            if !store.set_user_password(&name, &hash).await? {
                bail!("no user {name:?}");
            }
            eprintln!("password of {name} changed");
        }
    }
    Ok(())
}

fn check_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty() || name.len() > 64 || name.contains(':') || name.chars().any(char::is_control) {
        bail!("a user name is 1 to 64 characters, without ':' or control characters");
    }
    Ok(())
}

fn read_password() -> anyhow::Result<zeroize::Zeroizing<String>> {
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
    let pw = zeroize::Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
    if pw.len() < 8 {
        bail!("the password must be at least 8 characters");
    }
    Ok(pw)
}
