use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "keten", version, about = "Keten: an open Retail-as-a-Service supply-chain platform")]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    Ok(())
}
