//! `greenlight`: see `greenlight --help` and the README's "CLI" section.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut stdout = std::io::stdout();
    let code = greenlight_cli::run_args(std::env::args_os(), &mut stdout).await;
    std::process::ExitCode::from(code)
}
