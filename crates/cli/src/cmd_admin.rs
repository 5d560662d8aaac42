//! `wattprint admin …`: organisations, teams, projects, users and API tokens, written to the
//! server's database directly (for bootstrap, before any token exists). A token's secret is
//! printed once, on stdout, and never stored.

use anyhow::{bail, Result};
use wattprint_server::admin::{self, TokenSpec, DEFAULT_ORG};
use wattprint_server::store::Role;

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  wattprint admin team create physics\n  \
wattprint admin token create --team physics --role admin --name alice-laptop\n  \
wattprint admin token create --team physics --project climate --role member --name ci\n  \
wattprint admin token list\n  wattprint admin token revoke 3\n  \
wattprint admin run rm 2f1c9a7e-… --team physics --reason \"bogus figures\"\n  \
wattprint admin run deletions --team physics\n\nSee docs/server.md.")]
pub struct Args {
    /// The server's database: sqlite://PATH or postgres://… (default as for `wattprint serve`).
    #[arg(long, global = true, value_name = "URL")]
    pub database: Option<String>,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(clap::Subcommand)]
pub enum AdminCommand {
    /// Organisations (a database starts with one, "default").
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// Teams of an organisation.
    Team {
        #[command(subcommand)]
        command: TeamCommand,
    },
    /// Projects of a team (also created by a team token's first run in them).
    Project {
        #[command(subcommand)]
        command: ProjectCommand,
    },
    /// Users and their role in a team.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Runs: delete a bad one (audited), list the deletions.
    Run {
        #[command(subcommand)]
        command: RunCommand,
    },
    /// The rollups behind totals, budgets and the dashboard (docs/server.md, "Rollups").
    Rollups {
        #[command(subcommand)]
        command: RollupsCommand,
    },
}

#[derive(clap::Subcommand)]
pub enum RollupsCommand {
    /// Compare the rollups with a recomputation from the runs; fails if they differ.
    Check,
}

#[derive(clap::Subcommand)]
pub enum RunCommand {
    /// Delete a run of a team and its samples; totals and budgets drop by its figures. The
    /// deletion is recorded (who, when, the run's figures and record).
    Rm {
        /// The run's id.
        id: String,
        #[arg(long)]
        team: String,
        #[arg(long, default_value = DEFAULT_ORG)]
        org: String,
        /// Why, for the audit trail.
        #[arg(long)]
        reason: Option<String>,
        /// Print the audit entry as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The audit trail of deleted runs, newest first.
    Deletions {
        #[arg(long)]
        team: Option<String>,
        #[arg(long, default_value = DEFAULT_ORG)]
        org: String,
        /// At most N entries.
        #[arg(long, default_value_t = 100, value_name = "N")]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Subcommand)]
pub enum OrgCommand {
    /// Create an organisation.
    Create { name: String },
    /// Set how long the organisation's samples stay at full resolution and in 1-minute
    /// buckets (overrides `wattprint serve --keep-full-days/--keep-minute-days`).
    Retention {
        #[arg(long, default_value = DEFAULT_ORG)]
        org: String,
        #[arg(long, value_name = "DAYS")]
        full_days: i64,
        #[arg(long, value_name = "DAYS")]
        minute_days: i64,
    },
}

#[derive(clap::Subcommand)]
pub enum TeamCommand {
    /// Create a team.
    Create {
        name: String,
        #[arg(long, default_value = DEFAULT_ORG)]
        org: String,
    },
}

#[derive(clap::Subcommand)]
pub enum ProjectCommand {
    /// Create a project in a team.
    Create {
        name: String,
        #[arg(long)]
        team: String,
        #[arg(long, default_value = DEFAULT_ORG)]
        org: String,
    },
}

#[derive(clap::Subcommand)]
pub enum UserCommand {
    /// Create a user (if new) and, with --team, set their role in that team.
    Create {
        name: String,
        #[arg(long, default_value = DEFAULT_ORG)]
        org: String,
        #[arg(long)]
        team: Option<String>,
        /// viewer, member or admin.
        #[arg(long, default_value = "member", requires = "team")]
        role: String,
    },
}

#[derive(clap::Subcommand)]
pub enum TokenCommand {
    /// Create a token; its secret is printed once on stdout.
    Create {
        /// The team the token belongs to.
        #[arg(long, required_unless_present = "org_wide")]
        team: Option<String>,
        /// Narrow the token to one project of the team (created if new).
        #[arg(long, requires = "team")]
        project: Option<String>,
        /// viewer (reads), member (also uploads runs) or admin (also budgets and tokens).
        #[arg(long, default_value = "member")]
        role: String,
        /// What the token is for, to recognise it later.
        #[arg(long, default_value = "token")]
        name: String,
        /// Tie the token to a user: their runs are attributed to them.
        #[arg(long)]
        user: Option<String>,
        #[arg(long, default_value = DEFAULT_ORG)]
        org: String,
        /// A token for the whole organisation instead of a team (reads every team; cannot upload).
        #[arg(long, conflicts_with = "team")]
        org_wide: bool,
        /// Print the token and its details as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List tokens (never their secrets).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id: it stops working at once.
    Revoke { id: i64 },
}

fn role(s: &str) -> Result<Role> {
    match Role::parse(s) {
        Some(r) => Ok(r),
        None => bail!("unknown role {s:?}: use viewer, member or admin"),
    }
}

pub fn run(a: Args) -> Result<i32> {
    let database = crate::cmd_serve::database_url(a.database)?;
    admin::block_on(async move {
        let store = admin::open(&database).await?;
        match a.command {
            AdminCommand::Org {
                command: OrgCommand::Create { name },
            } => {
                let id = admin::create_org(&store, &name).await?;
                crate::stdout_ln!("created organisation {name:?} (id {id})");
            }
            AdminCommand::Rollups {
                command: RollupsCommand::Check,
            } => {
                let drift = store.rollup_drift().await?;
                if !drift.is_empty() {
                    let shown: Vec<&str> = drift.iter().take(20).map(String::as_str).collect();
                    bail!(
                        "the rollups differ from the runs in {} group(s):\n{}",
                        drift.len(),
                        shown.join("\n")
                    );
                }
                crate::stdout_ln!("rollups: exact (every group equals its runs' sums)");
            }
            AdminCommand::Org {
                command:
                    OrgCommand::Retention {
                        org,
                        full_days,
                        minute_days,
                    },
            } => {
                let Some(id) = store.org_id(&org).await? else {
                    bail!("no organisation {org:?}");
                };
                store.set_retention(id, full_days, minute_days).await?;
                crate::stdout_ln!(
                    "organisation {org:?}: samples kept as uploaded for {full_days} days after a run ends, in 1-minute buckets until day {minute_days}, then in 1-hour buckets"
                );
            }
            AdminCommand::Team {
                command: TeamCommand::Create { name, org },
            } => {
                let id = admin::create_team(&store, &org, &name).await?;
                crate::stdout_ln!("created team {name:?} in organisation {org:?} (id {id})");
            }
            AdminCommand::Project {
                command: ProjectCommand::Create { name, team, org },
            } => {
                let id = admin::create_project(&store, &org, &team, &name).await?;
                crate::stdout_ln!("created project {name:?} in team {team:?} (id {id})");
            }
            AdminCommand::User {
                command:
                    UserCommand::Create {
                        name,
                        org,
                        team,
                        role: r,
                    },
            } => {
                let r = role(&r)?;
                let id = admin::create_user(&store, &org, &name, team.as_deref(), r).await?;
                match team {
                    Some(t) => crate::stdout_ln!(
                        "user {name:?} (id {id}) has role {} in team {t:?}",
                        r.as_str()
                    ),
                    None => crate::stdout_ln!("created user {name:?} (id {id})"),
                }
            }
            AdminCommand::Token { command } => token(&store, command).await?,
            AdminCommand::Run { command } => run_cmd(&store, command).await?,
        }
        Ok::<i32, anyhow::Error>(0)
    })?
}

async fn token(store: &wattprint_server::store::Store, c: TokenCommand) -> Result<()> {
    match c {
        TokenCommand::Create {
            team,
            project,
            role: r,
            name,
            user,
            org,
            org_wide: _,
            json,
        } => {
            let spec = TokenSpec {
                org,
                team,
                project,
                user,
                role: role(&r)?,
                name,
            };
            let t = admin::create_token(store, &spec).await?;
            if json {
                crate::stdout_ln!("{}", serde_json::to_string_pretty(&t)?);
            } else {
                crate::stdout_ln!("{}", t.token);
            }
            let rec = &t.record;
            let scope = match (&rec.team, &rec.project) {
                (Some(team), Some(p)) => format!("project {p:?} of team {team:?}"),
                (Some(team), None) => format!("team {team:?}"),
                _ => format!("the whole organisation {:?}", rec.org),
            };
            eprintln!(
                "wattprint: created token {} ({}…, {:?}) for {scope}, role {}. Store it now: it is not shown again.",
                rec.id,
                rec.prefix,
                rec.name,
                rec.role.as_str()
            );
        }
        TokenCommand::List { json } => {
            let tokens = admin::list_tokens(store).await?;
            if json {
                crate::stdout_ln!("{}", serde_json::to_string_pretty(&tokens)?);
            } else {
                let h = [
                    "ID",
                    "PREFIX",
                    "ROLE",
                    "TEAM",
                    "PROJECT",
                    "NAME",
                    "LAST USED",
                    "REVOKED",
                    "USER",
                ];
                crate::stdout_ln!(
                    "{:>4}  {:<15} {:<7} {:<16} {:<16} {:<16} {:<24} {:<24} {}",
                    h[0],
                    h[1],
                    h[2],
                    h[3],
                    h[4],
                    h[5],
                    h[6],
                    h[7],
                    h[8]
                );
                for t in tokens {
                    crate::stdout_ln!(
                        "{:>4}  {:<15} {:<7} {:<16} {:<16} {:<16} {:<24} {:<24} {}",
                        t.id,
                        format!("{}…", t.prefix),
                        t.role.as_str(),
                        t.team.as_deref().unwrap_or("(org-wide)"),
                        t.project.as_deref().unwrap_or("-"),
                        t.name,
                        t.last_used_at.as_deref().unwrap_or("never"),
                        t.revoked_at.as_deref().unwrap_or("-"),
                        t.user.as_deref().unwrap_or("-"),
                    );
                }
            }
        }
        TokenCommand::Revoke { id } => {
            let t = admin::revoke_token(store, id).await?;
            crate::stdout_ln!(
                "revoked token {} ({}…, {:?}) at {}",
                t.id,
                t.prefix,
                t.name,
                t.revoked_at.as_deref().unwrap_or("?")
            );
        }
    }
    Ok(())
}

async fn run_cmd(store: &wattprint_server::store::Store, c: RunCommand) -> Result<()> {
    match c {
        RunCommand::Rm {
            id,
            team,
            org,
            reason,
            json,
        } => {
            let d = admin::delete_run(store, &org, &team, &id, reason.as_deref()).await?;
            if json {
                crate::stdout_ln!("{}", serde_json::to_string_pretty(&d)?);
            } else {
                crate::stdout_ln!(
                    "deleted run {:?} of team {:?} (project {:?}, {}, started {}): {} kWh IT, {} kWh facility, {} kg CO2e, {} samples; recorded as deletion {} by {} at {}",
                    d.run_id,
                    d.team,
                    d.project,
                    d.status,
                    d.started_at,
                    d.energy_kwh,
                    d.facility_kwh,
                    d.emissions_kg,
                    d.samples,
                    d.id,
                    d.deleted_by,
                    d.deleted_at
                );
            }
        }
        RunCommand::Deletions {
            team,
            org,
            limit,
            json,
        } => {
            let list = admin::deletions(store, &org, team.as_deref(), limit.min(100_000)).await?;
            if json {
                crate::stdout_ln!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                crate::stdout_ln!(
                    "{:<24}  {:<16} {:<16} {:<36} {:>12} {:>12}  BY",
                    "DELETED AT",
                    "TEAM",
                    "PROJECT",
                    "RUN",
                    "KWH",
                    "KG CO2E"
                );
                for d in list {
                    crate::stdout_ln!(
                        "{:<24}  {:<16} {:<16} {:<36} {:>12} {:>12}  {}",
                        d.deleted_at,
                        d.team,
                        d.project,
                        d.run_id,
                        d.energy_kwh,
                        d.emissions_kg,
                        d.deleted_by
                    );
                }
            }
        }
    }
    Ok(())
}
