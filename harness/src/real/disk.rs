//! A node's disk in real mode: one file per node file name, flat, in the node's data directory.
//!
//! A sync writes each staged file to `<name>.tmp`, fsyncs it, renames it over `<name>` and
//! fsyncs the directory, so a file is always either its old or its new synced contents. Staged
//! writes that were never synced live only in the node's memory and vanish with SIGKILL, exactly
//! as the node contract allows.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use systems::DiskImage;

const TEMP_SUFFIX: &str = ".tmp";

/// The data directory and a mirror of what is durable in it.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    synced: DiskImage,
}

/// Node file names must stay inside the data directory.
pub fn valid_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && !name.ends_with(TEMP_SUFFIX)
}

impl DataDir {
    /// Opens (creating if needed) a data directory and reads every synced file. Leftover
    /// temporary files are from a sync cut short by a crash: they were never renamed into
    /// place, so they are not part of the disk, and are removed.
    pub fn open(path: &Path) -> std::io::Result<DataDir> {
        fs::create_dir_all(path)?;
        let mut synced = DiskImage::new();
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            if !entry.file_type()?.is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(TEMP_SUFFIX) {
                fs::remove_file(entry.path())?;
            } else if valid_file_name(&name) {
                synced.insert(name, fs::read(entry.path())?);
            }
        }
        Ok(DataDir {
            path: path.to_path_buf(),
            synced,
        })
    }

    /// What is durable: the image handed to the node's handlers.
    pub fn image(&self) -> &DiskImage {
        &self.synced
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes `files` durable (temp file, fsync, rename, directory fsync) and updates the mirror.
    pub fn sync(&mut self, files: Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
        write_durably(&self.path, &files)?;
        self.note_synced(files);
        Ok(())
    }

    /// Updates the mirror after [`write_durably`] succeeded elsewhere (off the node's loop).
    pub fn note_synced(&mut self, files: Vec<(String, Vec<u8>)>) {
        self.synced.extend(files);
    }
}

/// The blocking part of a sync, usable off the node's loop.
pub fn write_durably(dir: &Path, files: &[(String, Vec<u8>)]) -> std::io::Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    for (name, bytes) in files {
        if !valid_file_name(name) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("invalid disk file name {name:?}"),
            ));
        }
        let temp = dir.join(format!("{name}{TEMP_SUFFIX}"));
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_data()?;
        fs::rename(&temp, dir.join(name))?;
    }
    // The renames are durable only once the directory itself is synced.
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synced_files_survive_reopening_and_temp_files_do_not() {
        let dir = std::env::temp_dir().join(format!("verity-disk-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut disk = DataDir::open(&dir).unwrap();
        assert!(disk.image().is_empty());
        disk.sync(vec![("raft.state".into(), b"{\"term\":3}".to_vec())])
            .unwrap();
        disk.sync(vec![("raft.log.000000".into(), b"a\n".to_vec())])
            .unwrap();
        fs::write(dir.join("raft.log.000001.tmp"), b"half a write").unwrap();
        let reopened = DataDir::open(&dir).unwrap();
        assert_eq!(reopened.image(), disk.image());
        assert_eq!(reopened.image().len(), 2);
        assert!(!dir.join("raft.log.000001.tmp").exists());
        assert!(disk.sync(vec![("../escape".into(), vec![])]).is_err());
        let _ = fs::remove_dir_all(&dir);
    }
}
