use std::process::ExitCode;

use clap::Parser;
use swarmseed::cli::{self, Cli, Command, ProofsCommand};
use swarmseed::proofs_cli;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

// Requests are parsed on one worker thread and their buffers freed on
// another; glibc's arenas take a lock for every such free, jemalloc's
// thread caches do not. Its freed large blocks stay mapped for a while, so
// a cold miss's multi-MiB buffers are reused without page faults.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // Two TLS stacks link rustls; without a process default the first TLS
    // connection panics.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(e.into()),
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

async fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run { config } => {
            let config = cli::load_config(config.as_deref())?;
            let shutdown = CancellationToken::new();
            tokio::spawn(cancel_on_signal(shutdown.clone()));
            swarmseed::run::run(config, shutdown).await
        }
        Command::Status { config } => {
            println!(
                "{}",
                cli::status(&cli::load_config(config.as_deref())?).await?
            );
            Ok(())
        }
        Command::Seed {
            url,
            id,
            swarm_id,
            trackers,
            latest,
            segments_sha256,
            config,
        } => {
            let options = gateway::SeedOptions {
                id,
                swarm_id,
                trackers,
                peertube: None,
                segments_sha256,
            };
            let config = cli::load_config(config.as_deref())?;
            let done = match latest {
                Some(n) => cli::seed_latest(&config, &url, n, options).await?,
                None => cli::seed(&config, &url, options).await?,
            };
            println!("{done}");
            Ok(())
        }
        Command::Cidmap { url, out } => {
            let json = cli::cidmap(&url).await?.to_json();
            match out {
                Some(path) => std::fs::write(&path, json)?,
                None => println!("{}", String::from_utf8_lossy(&json)),
            }
            Ok(())
        }
        Command::Proofs {
            action: ProofsCommand::Verify { source },
        } => {
            let s = proofs_cli::verify(&source).await?;
            println!(
                "ok: provider {}, {} epochs, {} receipts, {} bytes",
                s.provider, s.epochs, s.receipts, s.bytes
            );
            Ok(())
        }
        Command::Proofs {
            action: ProofsCommand::Export { epoch, out, config },
        } => {
            let config = cli::load_config(config.as_deref())?;
            let client = cli::daemon_client(&config)?;
            let json = proofs_cli::export(&client, &cli::daemon_url(&config, ""), epoch).await?;
            match out {
                Some(path) => std::fs::write(&path, json)?,
                None => println!("{}", String::from_utf8_lossy(&json)),
            }
            Ok(())
        }
        Command::Pin { action, config } => {
            let config = cli::load_config(config.as_deref())?;
            println!("{}", swarmseed::pin_cli::run(&config, action).await?);
            Ok(())
        }
        Command::Cid { file } => {
            println!("{}", cli::cid(&file)?);
            Ok(())
        }
    }
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    shutdown.cancel();
}

fn fail(e: anyhow::Error) -> ExitCode {
    eprintln!("swarmseed: {e:#}");
    ExitCode::FAILURE
}
