//! Every configuration the root README shows passes `vrrpd --check` (or `lbd --check`, for a
//! file of `[[listen]]` sections; `hald --check` for one with `[hald]`) without a warning, so the README cannot rot: each ```toml
//! block, and each heredoc (`cat > FILE <<'EOF'`) in a ```sh block.

use std::process::Command;

/// A config found in the README: the line it starts on, and its text.
struct Shown {
    line: usize,
    text: String,
}

/// The ```toml blocks and the heredocs of the ```sh blocks of `markdown`.
fn configs(markdown: &str) -> Vec<Shown> {
    let mut found = Vec::new();
    let mut fence: Option<(String, usize, String)> = None;
    let mut heredoc: Option<(String, usize, String)> = None;
    for (n, line) in markdown.lines().enumerate() {
        let n = n + 1;
        if let Some((lang, start, body)) = &mut fence {
            if line.trim_start().starts_with("```") {
                if lang == "toml" {
                    found.push(Shown {
                        line: *start,
                        text: std::mem::take(body),
                    });
                }
                fence = None;
                heredoc = None;
                continue;
            }
            if lang == "sh" {
                if let Some((end, start, text)) = &mut heredoc {
                    if line.trim() == end {
                        found.push(Shown {
                            line: *start,
                            text: std::mem::take(text),
                        });
                        heredoc = None;
                    } else {
                        text.push_str(line);
                        text.push('\n');
                    }
                } else if let Some((_, marker)) = line.split_once("<<") {
                    let end = marker.trim().trim_matches(|c| c == '\'' || c == '"');
                    heredoc = Some((end.to_owned(), n + 1, String::new()));
                }
            }
            body.push_str(line);
            body.push('\n');
        } else if let Some(lang) = line.trim_start().strip_prefix("```") {
            fence = Some((lang.trim().to_owned(), n + 1, String::new()));
        }
    }
    found
}

#[test]
fn every_config_in_the_readme_passes_its_daemons_check() {
    let readme = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let text = std::fs::read_to_string(readme).expect("the root README");
    let shown = configs(&text);
    // The Run heredocs (vrrpd, lbd), two hosts on a LAN, two on AWS: a parser that finds fewer
    // is broken.
    assert!(shown.len() >= 6, "found only {} configs", shown.len());
    assert!(
        shown.iter().any(|s| s.text.contains("[[listen]]")),
        "the lbd config"
    );
    let dir = std::env::temp_dir().join(format!("readme-configs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut failures = Vec::new();
    for s in &shown {
        let file = dir.join(format!("README.md-line-{}.toml", s.line));
        std::fs::write(&file, &s.text).expect("write");
        let daemon = if s.text.contains("[hald]") {
            env!("CARGO_BIN_EXE_hald")
        } else if s.text.contains("[[listen]]") {
            env!("CARGO_BIN_EXE_lbd")
        } else {
            env!("CARGO_BIN_EXE_vrrpd")
        };
        let out = Command::new(daemon)
            .arg("--check")
            .arg("--config")
            .arg(&file)
            .output()
            .expect("the daemon runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() || stderr.contains("warning:") {
            failures.push(format!("README.md line {}:\n{}{stderr}", s.line, s.text));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The commands the README gives for them are the ones that exist.
    assert!(text.contains("cargo run --release -p examples --bin ha-demo"));
    assert!(text.contains("target/release/lbd --config lbd.toml"));
    assert!(text.contains("target/release/hald --config hald.toml"));
    assert!(text.contains("AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN"));
    assert!(text.contains("ExecStartPre=/usr/local/bin/vrrpd --check --config /etc/ha/vrrpd.toml"));
}

#[test]
fn the_extractor_finds_toml_blocks_and_heredocs_only() {
    let md = "text\n```toml\na = 1\n```\n```sh\necho hi\ncat > x.toml <<'EOF'\nb = 2\nEOF\nrun\n```\n```ini\n[Unit]\n```\n";
    let found = configs(md);
    let got: Vec<(usize, &str)> = found.iter().map(|s| (s.line, s.text.as_str())).collect();
    assert_eq!(got, [(3, "a = 1\n"), (8, "b = 2\n")]);
}
