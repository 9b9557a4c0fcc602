//! `capstan plugin`: install, list, show, enable, disable, versions, rollback and remove
//! plugins on a running server.

use super::client::{ApiFailure, Client, Remote};
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Upload a `.wasm` component: a new plugin, or a new version of the one its manifest
    /// names (the old version keeps serving if the new one is refused).
    Install {
        file: PathBuf,
        /// A sidecar `capstan.toml`, for a component that does not embed its manifest.
        #[arg(long, value_name = "FILE")]
        manifest: Option<PathBuf>,
        /// A detached signature (`capstan plugin sign --detached`), for a component that
        /// does not embed one.
        #[arg(long, value_name = "FILE")]
        signature: Option<PathBuf>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Sign a component with an Ed25519 key, so a host whose policy trusts the key accepts
    /// it (see `trusted_keys` and `require_signature`).
    Sign(super::sign::SignArgs),
    /// Make a new Ed25519 signing key: FILE (private, PEM) and FILE.pub (the OpenSSH line
    /// for a policy's `trusted_keys`).
    Keygen(super::sign::KeygenArgs),
    /// List installed plugins.
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Show a plugin: status, version, sha256, and each capability requested, granted or denied.
    Show {
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Route calls to a plugin again.
    Enable {
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Stop routing calls to a plugin (it stays installed).
    Disable {
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// List a plugin's stored versions.
    Versions {
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Serve an earlier version: the previous one, or `--to SEQ`.
    Rollback {
        id: String,
        #[arg(long, value_name = "SEQ")]
        to: Option<i64>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Show or set a plugin's settings (`config`).
    #[command(subcommand)]
    Config(super::config::Command),
    /// Uninstall a plugin and all its versions (its data is kept unless --purge).
    Remove {
        id: String,
        /// Also delete its SQL database, kv data, secrets and settings.
        #[arg(long)]
        purge: bool,
        #[command(flatten)]
        remote: Remote,
    },
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Install {
            file,
            manifest,
            signature,
            remote,
        } => {
            let sidecars = Sidecars {
                manifest: manifest.as_deref(),
                signature: signature.as_deref(),
            };
            return install(&file, sidecars, &Client::new(&remote)?);
        }
        Command::Sign(args) => return super::sign::sign(args),
        Command::Keygen(args) => return super::sign::keygen(args),
        Command::Config(command) => return super::config::run(command),
        Command::List { remote } => {
            let client = Client::new(&remote)?;
            let plugins: Vec<Value> = client.fetch(client.request(Method::GET, "/plugins"))?;
            if !client.json {
                print_list(&plugins);
            }
        }
        Command::Show { id, remote } => {
            let client = Client::new(&remote)?;
            let info: Value =
                client.fetch(client.request(Method::GET, &format!("/plugins/{id}")))?;
            if !client.json {
                print_info(&info);
                if info["status"] == "running" {
                    let consent: Value = client
                        .fetch(client.request(Method::GET, &format!("/plugins/{id}/grants")))?;
                    print!("{}", super::consent::render(&consent));
                }
            }
        }
        Command::Enable { id, remote } => switch(&Client::new(&remote)?, &id, "enable")?,
        Command::Disable { id, remote } => switch(&Client::new(&remote)?, &id, "disable")?,
        Command::Versions { id, remote } => {
            let client = Client::new(&remote)?;
            let versions: Vec<Value> =
                client.fetch(client.request(Method::GET, &format!("/plugins/{id}/versions")))?;
            if !client.json {
                println!(
                    "{:>4}  {:<12}  {:<16}  {:<22}  SIGNER",
                    "SEQ", "VERSION", "SHA256", "INSTALLED (ms)"
                );
                for v in &versions {
                    println!(
                        "{:>4}  {:<12}  {:<16}  {:<22}  {}",
                        v["seq"].to_string(),
                        text(&v["version"]),
                        short(&v["sha256"]),
                        v["installed_ms"].to_string(),
                        text(&v["signer"])
                    );
                }
            }
        }
        Command::Rollback { id, to, remote } => {
            let client = Client::new(&remote)?;
            let body = to.map_or(json!({}), |seq| json!({ "seq": seq }));
            let info: Value = client.fetch(
                client
                    .request(Method::POST, &format!("/plugins/{id}/rollback"))
                    .json(&body),
            )?;
            if !client.json {
                println!(
                    "{id} now serves version {} ({})",
                    info["seq"],
                    text(&info["version"])
                );
            }
        }
        Command::Remove { id, purge, remote } => {
            let client = Client::new(&remote)?;
            let request = client.request(Method::DELETE, &format!("/plugins/{id}"));
            let request = if purge {
                request.query(&[("purge", "true")])
            } else {
                request
            };
            client.send(request)?;
            println!(
                "removed {id}{}",
                if purge { " and purged its data" } else { "" }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Upload `file` with a progress bar (shown on a terminal only). A refusal by the server
/// exits 2, like `capstan inspect` refusing the same component.
/// Files uploaded beside a component.
struct Sidecars<'a> {
    manifest: Option<&'a std::path::Path>,
    signature: Option<&'a std::path::Path>,
}

fn read_file(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
}

fn install(
    file: &std::path::Path,
    sidecars: Sidecars<'_>,
    client: &Client,
) -> anyhow::Result<ExitCode> {
    let handle = std::fs::File::open(file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let size = handle.metadata()?.len();
    let progress = ProgressBar::new(size).with_style(
        ProgressStyle::with_template("uploading {msg} {wide_bar} {bytes}/{total_bytes}")
            .expect("valid template"),
    );
    progress.set_message(file.display().to_string());
    let reader = progress.wrap_read(handle);
    let request = client.request(Method::POST, "/plugins");
    let request = match sidecars {
        Sidecars {
            manifest: None,
            signature: None,
        } => request
            .header(reqwest::header::CONTENT_TYPE, "application/wasm")
            .body(reqwest::blocking::Body::sized(reader, size)),
        Sidecars {
            manifest,
            signature,
        } => {
            let mut form = reqwest::blocking::multipart::Form::new().part(
                "component",
                reqwest::blocking::multipart::Part::reader_with_length(reader, size),
            );
            for (part, path) in [("manifest", manifest), ("signature", signature)] {
                if let Some(path) = path {
                    form = form.part(
                        part,
                        reqwest::blocking::multipart::Part::bytes(read_file(path)?),
                    );
                }
            }
            request.multipart(form)
        }
    };
    let answer = client.fetch::<Value>(request);
    progress.finish_and_clear();
    let info = match answer {
        Ok(info) => info,
        Err(error) => {
            if let Some(refused) = error.downcast_ref::<ApiFailure>()
                && (400..500).contains(&refused.status)
            {
                eprintln!("error: {refused}");
                return Ok(ExitCode::from(2));
            }
            return Err(error);
        }
    };
    if !client.json {
        println!(
            "installed {} {} as version {} (sha256 {})",
            text(&info["id"]),
            text(&info["version"]),
            info["seq"],
            short(&info["sha256"])
        );
        print_capabilities(&info);
    }
    Ok(ExitCode::SUCCESS)
}

fn switch(client: &Client, id: &str, action: &str) -> anyhow::Result<()> {
    let info: Value =
        client.fetch(client.request(Method::POST, &format!("/plugins/{id}/{action}")))?;
    if !client.json {
        println!("{id} {action}d (enabled: {})", info["enabled"]);
    }
    Ok(())
}

/// A text field of an API answer, escaped for the terminal (plugin-supplied text such as
/// descriptions and load errors is data).
fn text(value: &Value) -> String {
    crate::text::escape(value.as_str().unwrap_or("-")).into_owned()
}

/// The first 12 hex digits of a sha256, enough to tell versions apart.
fn short(value: &Value) -> String {
    let full = text(value);
    full.get(..12).unwrap_or(&full).to_string()
}

fn print_list(plugins: &[Value]) {
    println!(
        "{:<20}  {:<8}  {:<7}  {:>4}  {:<12}  SHA256",
        "ID", "STATUS", "ENABLED", "SEQ", "VERSION"
    );
    for p in plugins {
        println!(
            "{:<20}  {:<8}  {:<7}  {:>4}  {:<12}  {}",
            text(&p["id"]),
            text(&p["status"]),
            p["enabled"].to_string(),
            p["seq"].to_string(),
            text(&p["version"]),
            short(&p["sha256"])
        );
    }
}

fn print_info(info: &Value) {
    for field in [
        "id",
        "status",
        "enabled",
        "seq",
        "version",
        "sha256",
        "signer",
        "description",
    ] {
        let value = &info[field];
        let shown = match value {
            Value::String(_) | Value::Null => text(value),
            other => other.to_string(),
        };
        println!("{field:<12} {shown}");
    }
    if info["last_error"].is_string() {
        println!("{:<12} {}", "last error", text(&info["last_error"]));
    }
}

/// Capabilities the plugin asked for, with the decision and the reason for a denial, then
/// its high-risk grants.
fn print_capabilities(info: &Value) {
    for row in info["capabilities"].as_array().into_iter().flatten() {
        let decision = text(&row["decision"]);
        if decision == "not requested" {
            continue;
        }
        match row["reason"].is_string() {
            true => println!(
                "  {:<16} {decision}: {}",
                text(&row["capability"]),
                text(&row["reason"])
            ),
            false => println!("  {:<16} {decision}", text(&row["capability"])),
        }
    }
    for risk in info["risks"].as_array().into_iter().flatten() {
        println!("  ! {}: {}", text(&risk["risk"]), text(&risk["detail"]));
    }
}
