//! `scepd user ...`.

use std::io::BufRead;

use anyhow::{Context, bail};

use super::{UserCommand, authority};
use crate::accounts::Permission;

pub(super) async fn run(cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add { dir, name, password_stdin: _, permissions, ntlm } => {
            check_name(&name)?;
            let perms: Vec<String> =
                Permission::parse_list(&permissions)?.iter().map(|p| p.name().to_owned()).collect();
            let password = read_password()?;
            // With --ntlm, the NT hash is sealed under a key derived from the CA key.
            let added = authority(&dir.data_dir).await?.add_user(&name, &password, &perms, ntlm).await?;
            if !added {
                bail!("user {name:?} exists; use scepd user passwd to change the password");
            }
            let how = if ntlm { " (Basic and NTLM)" } else { "" };
            eprintln!("user {name} added with permissions {}{how}", perms.join(","));
        }
        UserCommand::List { dir } => {
            for u in authority(&dir.data_dir).await?.users().await? {
                let ntlm = if u.nt_secret.is_some() { "\tntlm" } else { "" };
                println!("{}\t{}{ntlm}", u.name, u.permissions.join(","));
            }
        }
        UserCommand::Remove { dir, name } => {
            if !authority(&dir.data_dir).await?.remove_user(&name).await? {
                bail!("no user {name:?}");
            }
            eprintln!("user {name} removed");
        }
        UserCommand::Passwd { dir, name, password_stdin: _, ntlm, no_ntlm } => {
            let authority = authority(&dir.data_dir).await?;
            let user = authority.user(&name).await?.with_context(|| format!("no user {name:?}"))?;
            // A user enabled for NTLM stays so (its NT hash follows the password) unless
            // told otherwise; the NT hash of an old password never stays behind.
            let keep_ntlm = !no_ntlm && (ntlm || user.nt_secret.is_some());
            let password = read_password()?;
            let changed = authority.set_password(&name, &password, keep_ntlm).await?;
            if !changed {
                bail!("no user {name:?}");
            }
            eprintln!("password of {name} changed{}", if keep_ntlm { " (Basic and NTLM)" } else { "" });
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
