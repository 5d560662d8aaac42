//! `wattprint sync`: send what was spooled while the server could not be reached (runs from
//! `wattprint run --server`, reports from `wattprint agent`). Each file is deleted only once the
//! server confirmed it; the server's ingestion is idempotent, so a replay never counts twice.

use crate::config::Config;
use crate::uploader::{self, Client, SendError, ServerTarget, SyncResult};
use anyhow::Result;

#[derive(clap::Args)]
#[command(
    after_help = "The token comes from $WATTPRINT_TOKEN or the configuration file's `token`.\n\
Exit status: 0 when the spool is empty afterwards, 1 when files were kept (server down, or\n\
refused: see the messages), 2 on a usage error. See docs/agents.md."
)]
pub struct Args {
    /// Server URL (default: $WATTPRINT_SERVER, else the configuration file's `server`).
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Only list what is spooled.
    #[arg(long)]
    pub list: bool,
}

pub fn run(a: Args) -> Result<i32> {
    let dir = wattprint_session::paths::Paths::resolve(crate::env())
        .spool()
        .map_err(anyhow::Error::msg)?;
    uploader::recover_claims(&dir);
    let files = uploader::list_spool(&dir);
    if a.list {
        for f in &files {
            let e: Option<uploader::SpoolEntry> = std::fs::read(f)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            match e {
                Some(e) => crate::stdout_ln!(
                    "{}\t{}\t{}\t{}{}",
                    e.kind,
                    e.key,
                    e.spooled_at,
                    e.reason,
                    e.attention.map(|_| "\t(needs attention)").unwrap_or("")
                ),
                None => crate::stdout_ln!("?\t{}\tunreadable", f.display()),
            }
        }
        eprintln!(
            "wattprint sync: {} file(s) in {}",
            files.len(),
            dir.display()
        );
        return Ok(0);
    }
    let config = Config::load(crate::env())?;
    for w in &config.warnings {
        eprintln!("wattprint: warning: {w}");
    }
    let Some(target) = ServerTarget::resolve(
        a.server.as_deref(),
        &config,
        crate::env(),
        &crate::stderr_messages(false),
    )?
    else {
        anyhow::bail!(
            "no server to send to: pass --server URL, or set WATTPRINT_SERVER or `server` in the configuration file"
        );
    };
    if files.is_empty() {
        crate::stdout_ln!(
            "wattprint sync: nothing to send ({} is empty)",
            dir.display()
        );
        return Ok(0);
    }
    let client = Client::new(target.clone());
    let (mut sent, mut kept, mut attention) = (0, 0, 0);
    for (i, f) in files.iter().enumerate() {
        match uploader::sync_file(&client, f) {
            SyncResult::Sent { kind, key, outcome } => {
                sent += 1;
                crate::stdout_ln!("sent {kind} {key} ({outcome})");
            }
            SyncResult::Kept { kind, key, error } => {
                kept += 1;
                if matches!(error, SendError::Rejected { .. }) {
                    attention += 1;
                    crate::stdout_ln!("kept {kind} {key}: NEEDS ATTENTION: {error}");
                } else {
                    crate::stdout_ln!("kept {kind} {key}: {error}");
                    // The server is not answering: the rest waits for the next sync.
                    let rest = files.len() - i - 1;
                    if rest > 0 {
                        kept += rest;
                        crate::stdout_ln!(
                            "kept {rest} more without trying (the server is not answering)"
                        );
                    }
                    break;
                }
            }
            SyncResult::Unreadable(why) => {
                kept += 1;
                attention += 1;
                crate::stdout_ln!(
                    "kept {}: not a spool file wattprint can send ({why})",
                    f.display()
                );
            }
            SyncResult::Gone => {}
        }
    }
    crate::stdout_ln!(
        "wattprint sync: {sent} sent, {kept} kept{} (server {})",
        if attention > 0 {
            format!(", {attention} needing attention")
        } else {
            String::new()
        },
        target.url
    );
    Ok(if kept == 0 { 0 } else { 1 })
}
