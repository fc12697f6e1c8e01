//! Commands printed for users to paste back into a shell: quoted so that every argument
//! (a `--set` value with spaces, quotes or parentheses) survives as it was given.

/// `arg` quoted for a POSIX shell where it needs it: as is when it holds only safe
/// characters, else in single quotes (a single quote inside as `'\''`).
pub fn quote(arg: &str) -> String {
    let safe = !arg.is_empty()
        && arg.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '-' | '_' | '.' | '/' | '=' | ':' | ',' | '+' | '%' | '@')
        });
    if safe {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// The command that resumes an interrupted `dssim run`: the same arguments (every `--set`,
/// `--seed`, `--shard` ...), `--out` made explicit, and `--resume`, each argument quoted.
pub fn resume_command(args: &[String], out: &std::path::Path) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut has_out = false;
    for a in args {
        if a == "--resume" {
            continue;
        }
        if a == "--out" || a.starts_with("--out=") {
            has_out = true;
        }
        words.push(a.clone());
    }
    if !has_out {
        words.push("--out".into());
        words.push(out.display().to_string());
    }
    words.push("--resume".into());
    words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_keeps_every_override_quoted() {
        let args: Vec<String> = [
            "dssim",
            "run",
            "experiments/mm1.toml",
            "--set",
            "duration=20m",
            "--set",
            "services.server.service_time=exp(10ms)",
            "--set",
            "name=it's",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            resume_command(&args, std::path::Path::new("results/mm 1")),
            "dssim run experiments/mm1.toml --set duration=20m --set \
             'services.server.service_time=exp(10ms)' --set 'name=it'\\''s' --out 'results/mm 1' --resume"
        );
        let again: Vec<String> = ["dssim", "run", "x.toml", "--out", "o", "--resume"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            resume_command(&again, std::path::Path::new("o")),
            "dssim run x.toml --out o --resume"
        );
    }
}
