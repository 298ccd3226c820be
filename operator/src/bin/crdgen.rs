//! Writes the CustomResourceDefinitions as YAML: `crdgen --out crds` (one file per CRD), or
//! to stdout without `--out`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;

/// Generate the Emporium CRDs from the Rust types.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Directory to write `<plural>.<group>.yaml` files into; stdout when absent.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    for (file, crd) in emporium_operator::crd::all() {
        let yaml = emporium_operator::crd::to_yaml(&crd).context("cannot render a CRD as YAML")?;
        match &args.out {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                let path = dir.join(file);
                std::fs::write(&path, yaml)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            None => print!("---\n{yaml}"),
        }
    }
    Ok(())
}
