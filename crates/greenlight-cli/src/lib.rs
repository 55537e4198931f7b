//! The `greenlight` CLI: the pure decisions ([`outcome`], [`report`]) and
//! the shell that reads AWS through `greenlight_aws` ([`commands`]).

pub mod cli;
pub mod commands;
pub mod outcome;
pub mod report;

use clap::Parser;

/// Parses `args` (the program name first) and runs the command against the
/// endpoint and credentials they and the environment name, writing to `out`;
/// the exit code. Usage errors print clap's message and answer 2 (`--help`
/// and `--version` answer 0).
pub async fn run_args<I, T>(args: I, out: &mut dyn std::io::Write) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                outcome::EXIT_USAGE
            } else {
                0
            };
            if e.use_stderr() {
                eprint!("{}", e.render());
            } else {
                let _ = write!(out, "{}", e.render());
            }
            return code;
        }
    };
    let sdk = commands::sdk_config(&cli.global).await;
    let clients = commands::Clients::new(&sdk, cli.global.endpoint_url.is_some());
    commands::run(&cli.command, &cli.global, &clients, out).await
}
