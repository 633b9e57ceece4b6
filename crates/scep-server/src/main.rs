//! The `scepd` binary.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // SCEPD_LOG_FORMAT=json: one JSON object per line, with the request's span
    // (transactionID, requester) on every line logged while handling it.
    if std::env::var("SCEPD_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().with_current_span(true).init();
    } else {
        builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init();
    }
    let cli = scep_server::cli::Cli::parse();
    match scep_server::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scepd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
