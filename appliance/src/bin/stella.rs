//! `stella`: the appliance's command line. Thin glue over the `appliance` library.

use anyhow::Result;
use clap::{Parser, Subcommand};
use crypto_profiles::ProfileId;
use kit_builder::exit::{classify, render, ExitStatus};

#[derive(Parser)]
#[command(
    name = "stella",
    version,
    about = "Stella Ops appliance: sealed, offline release control plane"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the crypto self-test (known answers and pairwise sign/verify) of one or every profile.
    Selftest {
        /// Only this profile.
        #[arg(long)]
        profile: Option<ProfileId>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(status) => std::process::ExitCode::from(status.code()),
        Err(err) => {
            eprintln!("stella: error: {}", render(&err));
            std::process::ExitCode::from(classify(&err).code())
        }
    }
}

fn run(cli: Cli) -> Result<ExitStatus> {
    match cli.command {
        Command::Selftest { profile, json } => {
            let ids: Vec<ProfileId> = profile.map_or_else(|| ProfileId::ALL.to_vec(), |p| vec![p]);
            let reports = appliance::diagnostics::self_test(&ids);
            if json {
                println!("{}", serde_json::to_string_pretty(&reports)?);
            } else {
                print!("{}", appliance::diagnostics::render(&reports));
            }
            Ok(if reports.iter().all(|r| r.ok) {
                ExitStatus::Ok
            } else {
                ExitStatus::Environment
            })
        }
    }
}
