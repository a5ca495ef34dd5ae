//! The custom-handler executable: configuration, logging, serve, stop on a signal.

use std::process::ExitCode;

use fluid_token_service::config::Config;
use fluid_token_service::startup::{Application, shutdown_signal};
use fluid_token_service::telemetry;

fn main() -> ExitCode {
    let config = match Config::load() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Held until main returns, so pending log lines are written before the process exits.
    let _logs = telemetry::init(&config.log_filter);

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match Application::build(config).await {
            Ok(app) => {
                app.run_until_stopped(shutdown_signal()).await;
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        }
    })
}
