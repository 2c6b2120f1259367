//! The run store: `results/<system>-<workload>/<UTC timestamp>/` and `results/latest`.

use serde_json::Value;
use std::path::{Path, PathBuf};

/// One run's directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// Creates `root/<system>-<workload>/<timestamp>/` (unique) and points `root/latest` at it.
    pub fn create(root: &Path, system: &str, workload: &str) -> std::io::Result<RunDir> {
        let group = root.join(format!("{system}-{workload}"));
        std::fs::create_dir_all(&group)?;
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string();
        let mut path = group.join(&stamp);
        let mut n = 1;
        while path.exists() {
            n += 1;
            path = group.join(format!("{stamp}-{n}"));
        }
        std::fs::create_dir_all(&path)?;
        let dir = RunDir { path };
        dir.point_latest(root);
        Ok(dir)
    }

    /// `root/latest` → this run (relative, so the results folder can move). Best effort.
    fn point_latest(&self, root: &Path) {
        let latest = root.join("latest");
        let target = self
            .path
            .strip_prefix(root)
            .unwrap_or(&self.path)
            .to_path_buf();
        let _ = std::fs::remove_file(&latest);
        #[cfg(unix)]
        let _ = std::os::unix::fs::symlink(&target, &latest);
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn write_json(&self, name: &str, value: &Value) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(value).unwrap_or_default();
        std::fs::write(self.file(name), text + "\n")
    }

    /// `repro.sh`: the one command that reproduces this run.
    pub fn write_repro(&self, command: &str) -> std::io::Result<()> {
        let script = format!(
            "#!/usr/bin/env bash\n# Reproduces this run: the same seed gives the same history.\n\
             # Run from the verity checkout (or set VERITY to the verity binary).\n\
             exec \"${{VERITY:-target/release/verity}}\" {command} \"$@\"\n"
        );
        let path = self.file("repro.sh");
        std::fs::write(&path, script)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        }
        Ok(())
    }

    /// One JSON object per line.
    pub fn write_jsonl<T: serde::Serialize>(&self, name: &str, items: &[T]) -> std::io::Result<()> {
        use std::io::Write;
        let mut w = std::io::BufWriter::new(std::fs::File::create(self.file(name))?);
        for item in items {
            serde_json::to_writer(&mut w, item)?;
            w.write_all(b"\n")?;
        }
        w.flush()
    }

    pub fn write_node_logs<'a>(
        &self,
        logs: impl IntoIterator<Item = (&'a String, &'a Vec<String>)>,
    ) -> std::io::Result<()> {
        let dir = self.file("node-logs");
        std::fs::create_dir_all(&dir)?;
        for (id, lines) in logs {
            let mut text = lines.join("\n");
            text.push('\n');
            std::fs::write(dir.join(format!("{id}.log")), text)?;
        }
        Ok(())
    }
}

/// The current git commit of the working directory, if there is one.
pub fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_dirs_are_unique_and_latest_points_at_the_newest() {
        let root = std::env::temp_dir().join(format!("verity-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let a = RunDir::create(&root, "raft", "lin-kv").unwrap();
        let b = RunDir::create(&root, "raft", "lin-kv").unwrap();
        assert_ne!(a.path, b.path);
        assert!(a.path.starts_with(root.join("raft-lin-kv")));
        let latest = std::fs::canonicalize(root.join("latest")).unwrap();
        assert_eq!(latest, std::fs::canonicalize(&b.path).unwrap());
        b.write_repro("test raft --seed 3").unwrap();
        let script = std::fs::read_to_string(b.file("repro.sh")).unwrap();
        assert!(script.contains("test raft --seed 3"));
        let _ = std::fs::remove_dir_all(&root);
    }
}
