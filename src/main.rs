use std::process::ExitCode;

use clap::Parser;
use lobby::{
    Application, Config,
    config::{AdminAction, Command},
    domain::Role,
    store::Store,
    web::error::error_chain,
};

/// mimalloc for everything Rust allocates (src/process/allocator.rs says why).
#[global_allocator]
static ALLOCATOR: lobby::process::allocator::Allocator = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Workers that go idle hand back what their heaps hold free.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(lobby::process::allocator::collect_when_idle)
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("lobby: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve())
}

async fn serve() -> ExitCode {
    // A missing .env is normal; settings then come from flags and the environment.
    let _ = dotenvy::dotenv();
    let config = Config::parse();
    lobby::telemetry::init();
    lobby::process::allocator::return_large_blocks();
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
    match config.command.clone().unwrap_or(Command::Serve) {
        Command::Migrate => {
            let store = Store::connect(&config.database_url, &config.database).await?;
            store.migrate().await?;
            store.close().await;
            println!("migrations applied to {}", config.database_url);
        }
        Command::Admin { action } => {
            let store = Store::connect(&config.database_url, &config.database).await?;
            store.migrate().await?;
            let (username, role) = match &action {
                AdminAction::Grant { username } => (username, Role::Admin),
                AdminAction::Revoke { username } => (username, Role::Member),
            };
            let result = change_role(&store, username, role).await;
            store.close().await;
            result?;
        }
        Command::Serve => Application::build(config).await?.run_until(shutdown_signal()).await?,
    }
    Ok(())
}

/// `lobby admin grant|revoke NAME`.
async fn change_role(store: &Store, username: &str, role: Role) -> Result<(), Box<dyn std::error::Error>> {
    let Some(id) = store.user_id_named(username).await? else {
        return Err(format!("there is no user named {username:?}").into());
    };
    store.set_role(id, role, lobby::store::Actor::CommandLine).await?;
    match role {
        Role::Admin => println!("{username} is now an admin"),
        Role::Member => println!("{username} is now a member"),
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
