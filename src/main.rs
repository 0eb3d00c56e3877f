use std::process::ExitCode;

use clap::Parser;
use lobby::{Application, Config, config::Command, store::Store, web::error::error_chain};

#[tokio::main]
async fn main() -> ExitCode {
    // A missing .env is normal; settings then come from flags and the environment.
    let _ = dotenvy::dotenv();
    let config = Config::parse();
    lobby::telemetry::init();
    lobby::limits::return_large_blocks();
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{}", error_chain(e.as_ref()));
            eprintln!("lobby: {}", error_chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    match config.command.unwrap_or(Command::Serve) {
        Command::Migrate => {
            let store = Store::connect(&config.database_url, &config.database).await?;
            store.migrate().await?;
            store.close().await;
            println!("migrations applied to {}", config.database_url);
        }
        Command::Serve => Application::build(config).await?.run_until(shutdown_signal()).await?,
    }
    Ok(())
}

/// Ctrl-C or SIGTERM, whichever comes first.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
