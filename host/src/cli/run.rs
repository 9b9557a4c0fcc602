//! `capstan run`: one call of a plugin with in-memory state, for plugin authors.

use super::PluginArgs;
use crate::capability::http::Outbound;
use crate::capability::jobs::RunHandle;
use crate::engine::PoolSize;
use crate::runtime::Request;
use crate::runtime::{
    Caller, Outcome, Plugin, Response, RunContext, Runtime, Services, Tool, ToolCall, next_call_id,
};
use crate::text::{escape, escape_block};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("call").required(true))]
pub struct Args {
    #[command(flatten)]
    plugin: PluginArgs,
    /// Call the `handler` export with a request for PATH (may include `?query`).
    #[arg(long, value_name = "PATH", group = "call")]
    get: Option<String>,
    /// Call MCP tool NAME.
    #[arg(long, value_name = "NAME", group = "call")]
    tool: Option<String>,
    /// List the MCP tools the policy exposes.
    #[arg(long, group = "call")]
    list_tools: bool,
    /// Run job NAME once, now, under its granted deadline.
    #[arg(long, value_name = "NAME", group = "call")]
    job: Option<String>,
    /// JSON arguments for `--tool`.
    #[arg(long, value_name = "JSON", default_value = "{}", requires = "tool")]
    args: String,
    /// Keep state (kv, secrets) in this data directory instead of in memory.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<std::path::PathBuf>,
    /// Repeat the call N times in fresh instances (state persists through kv).
    #[arg(long, value_name = "N", default_value_t = 1)]
    repeat: u32,
    /// With `--repeat`, print only the last call's answer, so timing or counting the
    /// calls does not count the printing. Earlier answers are not printed, a plugin's
    /// error among them; a call that cannot run still stops here with exit 3.
    #[arg(long, requires = "repeat")]
    quiet: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (bytes, sidecar, policy) = args.plugin.read()?;
    let services = match &args.data_dir {
        Some(dir) => super::state::open(dir)?,
        None => Services::in_memory_with(std::sync::Arc::new(Outbound::from_env()?)).0,
    };
    let runtime = Runtime::sized(services, PoolSize::ONE_PLUGIN)?;
    let plugin = match runtime.load(&bytes, sidecar.as_deref(), &policy) {
        Ok(plugin) => plugin,
        Err(error) => {
            eprintln!("refused ({}): {error}", error.code());
            return Ok(ExitCode::from(2));
        }
    };
    let admission = plugin.admission();
    if let Some(request) = &admission.manifest.capabilities.sql
        && let Err(error) = crate::capability::sql::migrate(
            &*runtime.services().sql,
            plugin.id(),
            request,
            &admission.grants.sql,
        )
    {
        eprintln!("refused (migration): {error}");
        return Ok(ExitCode::from(2));
    }
    let calls = args.repeat.max(1);
    for call in 1..=calls {
        match call_once(&plugin, &args) {
            Ok(answer) if !args.quiet || call == calls => show(answer),
            Ok(_) => {}
            Err(error) => {
                eprintln!("call failed ({}): {error}", error.code());
                return Ok(ExitCode::from(3));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What one call answered, kept apart from printing it so `--quiet` skips only the
/// printing.
enum Answer {
    Route(Response),
    Job {
        name: String,
        outcome: Outcome,
        progress: Option<String>,
    },
    Tool(ToolCall),
    Tools(Vec<Tool>),
}

/// One call as `args` asks.
fn call_once(plugin: &Plugin, args: &Args) -> Result<Answer, crate::InvokeError> {
    if let Some(path) = &args.get {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let request = Request {
            method: "GET".into(),
            path: path.to_string(),
            query: query.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        };
        Ok(Answer::Route(plugin.handle(&request)?))
    } else if let Some(name) = &args.job {
        let deadline = plugin
            .admission()
            .grants
            .jobs
            .granted()
            .and_then(|grant| grant.jobs.get(name))
            .map(|job| job.deadline)
            .ok_or_else(|| crate::InvokeError::Denied {
                plugin: plugin.id().to_string(),
                capability: crate::capability::CapabilityId::Jobs,
            })?;
        let context = RunContext {
            run_id: "local".into(),
            scheduled_for: u64::try_from(crate::audit::to_millis(std::time::SystemTime::now()))
                .unwrap_or(0),
            attempt: 1,
        };
        let run = RunHandle::new();
        let outcome = plugin.run_job(name, &context, run.clone(), deadline, next_call_id())?;
        Ok(Answer::Job {
            name: name.clone(),
            outcome,
            progress: run.take_beat().flatten(),
        })
    } else if let Some(tool) = &args.tool {
        let caller = Caller {
            client_id: "cli".into(),
            client_name: "cli".into(),
        };
        Ok(Answer::Tool(plugin.call_tool(
            tool,
            &args.args,
            &caller,
            next_call_id(),
        )?))
    } else {
        Ok(Answer::Tools(plugin.list_tools()?))
    }
}

/// Print `answer` for a person: plugin text escaped.
fn show(answer: Answer) {
    match answer {
        Answer::Route(response) => {
            println!("HTTP {}", response.status);
            for (name, value) in &response.headers {
                println!("{}: {}", escape(name), escape(value));
            }
            println!();
            let body = String::from_utf8_lossy(&response.body);
            println!("{}", escape_block(body.trim_end()));
        }
        Answer::Job {
            name,
            outcome,
            progress,
        } => {
            match outcome {
                Ok(()) => println!("job {} succeeded", escape(&name)),
                Err(error) => println!("job error: {}", crate::wit_error::describe(&error)),
            }
            if let Some(progress) = progress {
                println!("last progress: {}", escape(&progress));
            }
        }
        Answer::Tool(Ok(result)) => println!("{}", escape_block(&result)),
        Answer::Tool(Err(error)) => {
            println!("tool error: {}", crate::wit_error::describe(&error))
        }
        Answer::Tools(tools) => {
            for tool in tools {
                println!(
                    "{}\t{}\t{}",
                    escape(&tool.name),
                    escape(&tool.description),
                    escape(&tool.input_schema)
                );
            }
        }
    }
}
