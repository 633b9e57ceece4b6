//! The `scepd` binary.

use clap::Parser;

fn main() -> std::process::ExitCode {
    // The blocking pool runs the RSA work: as many threads as cores keep it busy without
    // the hand-offs of a larger pool.
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    match tokio::runtime::Builder::new_multi_thread().enable_all().max_blocking_threads(cores).build() {
        Ok(rt) => rt.block_on(run()),
        Err(e) => {
            eprintln!("scepd: cannot start the runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> std::process::ExitCode {
    use tracing_subscriber::field::MakeExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // SCEPD_LOG_FORMAT=json: one JSON object per line, with the request's span
    // (transactionID, requester) on every line logged while handling it.
    if std::env::var("SCEPD_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().with_current_span(true).init();
    } else {
        // Values a client chose (subjects, transactionIDs, error texts) cannot forge a
        // line or send escape sequences: control characters are written escaped.
        let fields = tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
            let text = format!("{value:?}");
            let text = scep_server::text::escape_controls(&text);
            if field.name() == "message" { write!(w, "{text}") } else { write!(w, "{field}={text}") }
        })
        .delimited(" ");
        builder.fmt_fields(fields).with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init();
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
