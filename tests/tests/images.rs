//! The images `make images` builds without a Docker engine (scripts/images.sh) stay in step with
//! the Dockerfiles users build: the same entrypoint, user, exposed ports and environment as the
//! Dockerfile's final stage on its distroless base, and the layer holds what the binary needs to
//! start (itself, its loader and libc, the CA bundle) and no shell.
//!
//! Builds the images first when `.bin/images/` lacks them (bounded); `make test` builds them
//! before the tests run.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
};

use anyhow::{Context as _, bail, ensure};
use emporium_integration_tests::workspace_root;
use serde_json::Value;

/// The environment `gcr.io/distroless/cc-debian12` sets, which the Dockerfiles inherit.
const BASE_ENV: [(&str, &str); 2] = [
    (
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ),
    ("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"),
];
/// Longest `scripts/images.sh` may take when the test has to build the images itself.
const BUILD_LIMIT_SECONDS: u32 = 1200;

/// What a container started from an image runs: the parts a Dockerfile's final stage and an OCI
/// image config both state.
#[derive(Debug, PartialEq, Eq)]
struct RunConfig {
    entrypoint: Vec<String>,
    user: String,
    ports: BTreeSet<String>,
    env: BTreeMap<String, String>,
}

/// The final stage of `dockerfile` (instructions after its last `FROM`), on the distroless base.
fn dockerfile_config(dockerfile: &Path) -> anyhow::Result<RunConfig> {
    let text = std::fs::read_to_string(dockerfile)
        .with_context(|| format!("cannot read {}", dockerfile.display()))?;
    let joined = text.replace("\\\n", " ");
    let mut stage: Vec<(String, String)> = Vec::new();
    for line in joined.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (instruction, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let instruction = instruction.to_ascii_uppercase();
        if instruction == "FROM" {
            stage.clear();
        }
        stage.push((instruction, rest.trim().to_owned()));
    }
    let mut config = RunConfig {
        entrypoint: Vec::new(),
        user: String::new(),
        ports: BTreeSet::new(),
        env: BASE_ENV
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    };
    for (instruction, rest) in stage {
        match instruction.as_str() {
            "USER" => config.user = rest,
            "ENTRYPOINT" => {
                config.entrypoint = serde_json::from_str(&rest).with_context(|| {
                    format!(
                        "{}: ENTRYPOINT must be in exec form (a JSON array), found {rest}",
                        dockerfile.display()
                    )
                })?
            }
            "EXPOSE" => {
                for port in rest.split_whitespace() {
                    let port = if port.contains('/') {
                        port.to_owned()
                    } else {
                        format!("{port}/tcp")
                    };
                    config.ports.insert(port);
                }
            }
            "ENV" => {
                for pair in rest.split_whitespace() {
                    let Some((key, value)) = pair.split_once('=') else {
                        bail!(
                            "{}: write ENV as KEY=VALUE, found `ENV {rest}`",
                            dockerfile.display()
                        );
                    };
                    config
                        .env
                        .insert(key.to_owned(), value.trim_matches('"').to_owned());
                }
            }
            _ => {}
        }
    }
    ensure!(
        !config.entrypoint.is_empty() && !config.user.is_empty(),
        "{}: the final stage needs USER and ENTRYPOINT",
        dockerfile.display()
    );
    Ok(config)
}

/// One file of an image tarball (`docker save` layout, as go-containerregistry writes it).
fn tar_member(tarball: &Path, member: &str) -> anyhow::Result<Vec<u8>> {
    let output = Command::new("tar")
        .arg("-xOf")
        .arg(tarball)
        .arg(member)
        .output()
        .context("cannot run tar")?;
    ensure!(
        output.status.success(),
        "tar could not read {member} from {}: {}",
        tarball.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(output.stdout)
}

/// The image's config and the paths in its layers.
fn image_contents(tarball: &Path) -> anyhow::Result<(RunConfig, BTreeSet<String>)> {
    let manifest: Value = serde_json::from_slice(&tar_member(tarball, "manifest.json")?)
        .context("manifest.json is not JSON")?;
    let entry = &manifest[0];
    let config_name = entry["Config"]
        .as_str()
        .context("manifest.json names no Config")?;
    let config: Value = serde_json::from_slice(&tar_member(tarball, config_name)?)
        .with_context(|| format!("{config_name} is not JSON"))?;
    let c = &config["config"];
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let run = RunConfig {
        entrypoint: strings(&c["Entrypoint"]),
        user: c["User"].as_str().unwrap_or_default().to_owned(),
        ports: c["ExposedPorts"]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default(),
        env: strings(&c["Env"])
            .iter()
            .filter_map(|e| e.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    };

    let mut paths = BTreeSet::new();
    for layer in entry["Layers"]
        .as_array()
        .context("manifest.json names no Layers")?
    {
        let layer = layer
            .as_str()
            .context("a layer name that is not a string")?;
        let blob = std::env::temp_dir().join(format!(
            "emporium-image-layer-{}-{}",
            std::process::id(),
            layer.replace('/', "_")
        ));
        std::fs::write(&blob, tar_member(tarball, layer)?)?;
        let listing = Command::new("tar").arg("-tzf").arg(&blob).output();
        let _ = std::fs::remove_file(&blob);
        let listing = listing.context("cannot run tar")?;
        ensure!(
            listing.status.success(),
            "layer {layer} is not a gzipped tar"
        );
        paths.extend(
            String::from_utf8_lossy(&listing.stdout)
                .lines()
                .map(|p| format!("/{}", p.trim_start_matches("./").trim_end_matches('/'))),
        );
    }
    Ok((run, paths))
}

/// `.bin/images/<component>.tar`, built by scripts/images.sh when missing (once for every test
/// here, from the binaries `cargo test` built: a cargo build inside a running `cargo test` would
/// wait for its lock).
fn image_tarball(component: &str) -> anyhow::Result<PathBuf> {
    static BUILT: Mutex<bool> = Mutex::new(false);
    let root = workspace_root();
    let tarball = root.join(".bin/images").join(format!("{component}.tar"));
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !tarball.exists() && !*built {
        *built = true;
        let status = Command::new("timeout")
            .arg(BUILD_LIMIT_SECONDS.to_string())
            .arg(root.join("scripts/images.sh"))
            .env("EMPORIUM_IMAGE_NO_BUILD", "1")
            .current_dir(&root)
            .status()
            .context("cannot run scripts/images.sh")?;
        ensure!(
            status.success(),
            "scripts/images.sh failed or took over {BUILD_LIMIT_SECONDS}s ({status}); run `make images` to see why"
        );
    }
    ensure!(
        tarball.exists(),
        "no {}: run `make images`",
        tarball.display()
    );
    Ok(tarball)
}

fn assert_in_step(component: &str) -> anyhow::Result<()> {
    let dockerfile = workspace_root().join(component).join("Dockerfile");
    let expected = dockerfile_config(&dockerfile)?;
    let tarball = image_tarball(component)?;
    let (actual, paths) = image_contents(&tarball)?;
    ensure!(
        actual == expected,
        "{} differs from {} (rebuild with `make images`):\n  image:      {actual:?}\n  Dockerfile: {expected:?}",
        tarball.display(),
        dockerfile.display()
    );

    let uid = actual.user.split(':').next().unwrap_or_default();
    ensure!(
        uid.parse::<u32>().is_ok_and(|u| u != 0),
        "the image runs as `{}`, not a numeric non-root user",
        actual.user
    );
    for needed in [
        expected.entrypoint[0].as_str(),
        "/lib64/ld-linux-x86-64.so.2",
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/etc/ssl/certs/ca-certificates.crt",
    ] {
        ensure!(
            paths.contains(needed),
            "{} lacks {needed}; it has {paths:?}",
            tarball.display()
        );
    }
    let shells: Vec<&String> = paths
        .iter()
        .filter(|p| p.ends_with("/sh") || p.ends_with("/bash") || p.ends_with("/busybox"))
        .collect();
    ensure!(
        shells.is_empty(),
        "{} has a shell: {shells:?}",
        tarball.display()
    );
    Ok(())
}

#[test]
fn operator_image_matches_its_dockerfile() -> anyhow::Result<()> {
    assert_in_step("operator")
}

#[test]
fn storefront_image_matches_its_dockerfile() -> anyhow::Result<()> {
    assert_in_step("storefront")
}

#[test]
fn a_dockerfile_that_drifts_is_caught() -> anyhow::Result<()> {
    // The comparison itself: a Dockerfile with another user and an extra port and variable no
    // longer matches what its image would have been built from.
    let dir = std::env::temp_dir().join(format!("emporium-dockerfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let original = dir.join("Dockerfile");
    let drifted = dir.join("Dockerfile.drifted");
    std::fs::write(
        &original,
        "FROM rust AS build\nUSER root\nENV BUILD=1\nFROM base\nUSER 65532:65532\nENV A=1\nENTRYPOINT [\"/bin/x\"]\n",
    )?;
    std::fs::write(
        &drifted,
        "FROM base\nUSER 1000\nENV A=1 \\\n    B=2\nEXPOSE 8080\nENTRYPOINT [\"/bin/x\"]\n",
    )?;
    let a = dockerfile_config(&original)?;
    let b = dockerfile_config(&drifted)?;
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        a.user, "65532:65532",
        "the build stage's USER is not the image's"
    );
    assert!(!a.env.contains_key("BUILD"));
    assert_eq!(b.ports, BTreeSet::from(["8080/tcp".to_owned()]));
    assert_eq!(b.env.get("B").map(String::as_str), Some("2"));
    assert_ne!(a, b);
    Ok(())
}
