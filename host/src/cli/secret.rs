//! `capstan secret`: set, remove, list (names only) and rotate the master key. With
//! `--server` (or CAPSTAN_SERVER) set, remove and list go through a running server's
//! admin API; otherwise they work on the data directory directly.

use super::client::{Client, Remote};
use super::state::DataDir;
use crate::audit::{AuditEvent, AuditKind};
use crate::capability::CapabilityId;
use crate::manifest::validate_id;
use crate::secrets::{KEY_FILE, Keyring, MasterKey, NEXT_KEY_FILE, Secrets, write_key_file};
use std::io::Read;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Store a secret for a plugin; the value is read from standard input (one trailing
    /// newline is dropped), encrypted, and never printed.
    Set {
        plugin: String,
        name: String,
        #[command(flatten)]
        data: DataDir,
        #[command(flatten)]
        server: ServerUrl,
    },
    /// Remove a plugin's secret.
    Rm {
        plugin: String,
        name: String,
        #[command(flatten)]
        data: DataDir,
        #[command(flatten)]
        server: ServerUrl,
    },
    /// List secret names (never values), optionally of one plugin.
    List {
        plugin: Option<String>,
        #[command(flatten)]
        data: DataDir,
        #[command(flatten)]
        server: ServerUrl,
    },
    /// Re-encrypt every secret under a new master key. With a key file, a new one is
    /// generated and swapped in; with CAPSTAN_MASTER_KEY, give the new key in
    /// CAPSTAN_NEW_MASTER_KEY and switch the environment afterwards.
    RotateKey {
        #[command(flatten)]
        data: DataDir,
    },
}

/// A running server to manage secrets through, instead of the data directory.
#[derive(Debug, clap::Args)]
pub struct ServerUrl {
    /// Base URL of a running `capstan serve` (token from CAPSTAN_ADMIN_TOKEN or the data
    /// directory's admin.token).
    #[arg(long = "server", env = "CAPSTAN_SERVER", value_name = "URL")]
    url: Option<String>,
}

impl ServerUrl {
    /// An admin API client, if a server was named.
    fn client(&self, data: &DataDir) -> anyhow::Result<Option<Client>> {
        self.url
            .as_ref()
            .map(|url| {
                Client::new(&Remote {
                    server: url.clone(),
                    data: data.clone(),
                    json: false,
                })
            })
            .transpose()
    }
}

fn secret_path(plugin: &str, name: &str) -> String {
    format!("/secrets/{plugin}/{name}")
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Set {
            plugin,
            name,
            data,
            server,
        } => {
            validate_id(&plugin)?;
            let mut value = String::new();
            std::io::stdin().read_to_string(&mut value)?;
            let value = value.strip_suffix('\n').unwrap_or(&value);
            let value = value.strip_suffix('\r').unwrap_or(value);
            anyhow::ensure!(!value.is_empty(), "no value on standard input");
            if let Some(client) = server.client(&data)? {
                client.send(
                    client
                        .request(reqwest::Method::PUT, &secret_path(&plugin, &name))
                        .body(value.to_string()),
                )?;
            } else {
                let services = data.open()?;
                services.secrets.set(&plugin, &name, value)?;
                audit(&services, &plugin, format!("secret `{name}` set"));
            }
            eprintln!("secret `{name}` of plugin `{plugin}` stored (encrypted)");
        }
        Command::Rm {
            plugin,
            name,
            data,
            server,
        } => {
            if let Some(client) = server.client(&data)? {
                client
                    .send(client.request(reqwest::Method::DELETE, &secret_path(&plugin, &name)))?;
                return Ok(ExitCode::SUCCESS);
            }
            let services = data.open()?;
            if !services.secrets.remove(&plugin, &name)? {
                eprintln!("plugin `{plugin}` has no secret `{name}`");
                return Ok(ExitCode::from(1));
            }
            audit(&services, &plugin, format!("secret `{name}` removed"));
        }
        Command::List {
            plugin,
            data,
            server,
        } => {
            let names = match server.client(&data)? {
                Some(client) => {
                    let query: Vec<_> = plugin.iter().map(|p| ("plugin", p)).collect();
                    let rows: Vec<serde_json::Value> = client.fetch(
                        client
                            .request(reqwest::Method::GET, "/secrets")
                            .query(&query),
                    )?;
                    rows.iter()
                        .map(|row| {
                            let field = |key: &str| row[key].as_str().unwrap_or("-").to_string();
                            (field("plugin"), field("name"))
                        })
                        .collect()
                }
                None => data.open()?.secrets.list(plugin.as_deref())?,
            };
            for (plugin, name) in names {
                println!("{plugin}\t{name}");
            }
        }
        Command::RotateKey { data } => rotate(&data)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn audit(services: &crate::runtime::Services, plugin: &str, detail: String) {
    services.audit.record(AuditEvent::new(
        plugin,
        AuditKind::SecretChanged,
        Some(CapabilityId::Secrets),
        detail,
    ));
}

/// Rotation survives interruption: the new key is written first (as `master.key.next`),
/// every secret is resealed in one transaction, then the new key replaces the old.
fn rotate(data: &DataDir) -> anyhow::Result<()> {
    let services = data.open()?;
    let store = services.secrets.clone();
    if let Ok(new_hex) = std::env::var("CAPSTAN_NEW_MASTER_KEY") {
        let old = MasterKey::from_hex(&std::env::var("CAPSTAN_MASTER_KEY").unwrap_or_default())?;
        let new_key = MasterKey::from_hex(&new_hex)?;
        let count = reseal(
            &store,
            Keyring::single(old).with(new_key.clone()),
            &new_key,
            data,
        )?;
        eprintln!("resealed {count} secrets; now set CAPSTAN_MASTER_KEY to the new key");
        return Ok(());
    }
    anyhow::ensure!(
        std::env::var("CAPSTAN_MASTER_KEY").is_err(),
        "CAPSTAN_MASTER_KEY is set: put the new key in CAPSTAN_NEW_MASTER_KEY to rotate"
    );
    let next_path = data.path.join(NEXT_KEY_FILE);
    let new_key = match std::fs::read_to_string(&next_path) {
        Ok(hex) => MasterKey::from_hex(&hex)?,
        Err(_) => {
            let (key, hex) = MasterKey::generate();
            write_key_file(&next_path, &hex)?;
            key
        }
    };
    let count = reseal(
        &store,
        Keyring::load(&data.path)?.with(new_key.clone()),
        &new_key,
        data,
    )?;
    std::fs::rename(&next_path, data.path.join(KEY_FILE))?;
    eprintln!(
        "resealed {count} secrets under a new master key ({})",
        data.path.join(KEY_FILE).display()
    );
    Ok(())
}

/// Reseal every secret of `current`'s store under `new_key`, opening with `keys`.
fn reseal(
    current: &Secrets,
    keys: Keyring,
    new_key: &MasterKey,
    data: &DataDir,
) -> anyhow::Result<usize> {
    let count = current.rekeyed(keys).reseal_under(new_key)?;
    tracing::info!(data_dir = %data.path.display(), key = %new_key.id(), "master key rotated");
    Ok(count)
}
