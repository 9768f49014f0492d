//! `FileRegistry`: the default model registry, a local directory.
//!
//! ```text
//! <root>/<name>/.lock                   writers of <name> take this lock
//! <root>/<name>/next                    the next version number
//! <root>/<name>/aliases.json            alias → version
//! <root>/<name>/versions/<n>/model.wharf
//! <root>/<name>/versions/<n>/meta.json
//! <root>/<name>/versions/<n>/card.html  the version's model card, once one is stored
//! ```
//!
//! A version is written into a staging directory and renamed into `versions/` only when
//! complete and flushed, so readers never see half a version, and a crash leaves only a
//! staging directory that is ignored (and cleaned on the next register). Writers of one name
//! are serialised by a file lock, so two processes registering at once get distinct,
//! consecutive versions.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use chrono::Utc;

use crate::fsutil::{sync_dir, write_atomic, FileLock};
use crate::ports::registry::{
    validate_alias, validate_name, RegisteredModel, RegistryPort, Selector, Unreadable, Version, VersionInfo,
};
use crate::{Model, Result, WharfError};

/// A registry in a local directory (default `./wharf-registry`).
#[derive(Debug, Clone)]
pub struct FileRegistry {
    root: PathBuf,
}

impl FileRegistry {
    /// A registry rooted at `root` (created on the first register).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FileRegistry { root: root.into() }
    }

    /// The registry's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn model_dir(&self, name: &str) -> Result<PathBuf> {
        validate_name(name)?;
        Ok(self.root.join(name))
    }

    fn version_dir(&self, name: &str, version: Version) -> Result<PathBuf> {
        Ok(self.model_dir(name)?.join("versions").join(version.to_string()))
    }

    fn lock(&self, name: &str) -> Result<FileLock> {
        FileLock::acquire(&self.model_dir(name)?.join(".lock"))
    }

    /// The lock of a name that must exist already: a writer that only changes a registered
    /// name (an alias, a deletion) never creates its directory, so a mistyped name leaves
    /// nothing behind.
    fn lock_existing(&self, name: &str) -> Result<FileLock> {
        let dir = self.model_dir(name)?;
        if !dir.is_dir() {
            return Err(WharfError::not_found(format!("model '{name}'")));
        }
        let lock = self.lock(name)?;
        self.clean_temporaries(&dir);
        Ok(lock)
    }

    /// Removes the temporary files of [`write_atomic`] a killed writer left in `dir`
    /// (`.next.tmp-…`, `.aliases.json.tmp-…`). Called with the name's lock held: every
    /// writer of the name holds it while it writes, so any such file is a leftover.
    fn clean_temporaries(&self, dir: &Path) {
        if let Ok(entries) = fs::read_dir(dir) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.') && name.contains(".tmp-") && entry.path().is_file() {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
    }

    fn versions(&self, name: &str) -> Result<Vec<Version>> {
        let dir = self.model_dir(name)?.join("versions");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(WharfError::io(&dir, e)),
        };
        let mut versions: Vec<Version> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u64>().ok()))
            .filter(|v| *v > 0)
            .map(Version)
            .collect();
        versions.sort();
        Ok(versions)
    }

    fn aliases(&self, name: &str) -> Result<BTreeMap<String, Version>> {
        let path = self.model_dir(name)?.join("aliases.json");
        match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| WharfError::invalid(path.display().to_string(), format!("unreadable aliases: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(WharfError::io(&path, e)),
        }
    }

    fn write_aliases(&self, name: &str, aliases: &BTreeMap<String, Version>) -> Result<()> {
        let path = self.model_dir(name)?.join("aliases.json");
        let text = serde_json::to_vec_pretty(aliases).map_err(|e| WharfError::invalid("aliases", e.to_string()))?;
        write_atomic(&path, &text)
    }

    fn resolve(&self, name: &str, selector: &Selector) -> Result<Version> {
        let versions = self.versions(name)?;
        if versions.is_empty() {
            return Err(WharfError::not_found(format!("model '{name}'")));
        }
        match selector {
            Selector::Latest => Ok(*versions.last().unwrap_or(&Version(1))),
            Selector::Version(v) if versions.contains(v) => Ok(*v),
            Selector::Version(v) => Err(WharfError::not_found(format!("model '{name}' version {v}"))),
            Selector::Alias(a) => self
                .aliases(name)?
                .get(a)
                .copied()
                .ok_or_else(|| WharfError::not_found(format!("alias '{a}' of model '{name}'"))),
        }
    }

    fn read_info(&self, name: &str, version: Version, aliases: &BTreeMap<String, Version>) -> Result<VersionInfo> {
        let path = self.version_dir(name, version)?.join("meta.json");
        let text = fs::read_to_string(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => WharfError::not_found(format!("model '{name}' version {version}")),
            _ => WharfError::io(&path, e),
        })?;
        let mut info: VersionInfo = serde_json::from_str(&text)
            .map_err(|e| WharfError::invalid(path.display().to_string(), format!("unreadable metadata: {e}")))?;
        info.aliases = aliases.iter().filter(|(_, v)| **v == version).map(|(a, _)| a.clone()).collect();
        Ok(info)
    }

    /// Removes staging directories a crashed register left behind.
    fn clean_staging(&self, dir: &Path) {
        if let Ok(entries) = fs::read_dir(dir) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(".staging-") {
                    let _ = fs::remove_dir_all(entry.path());
                }
            }
        }
    }
}

impl RegistryPort for FileRegistry {
    fn name(&self) -> &str {
        "file"
    }

    fn register(&self, model: &Model, name: &str) -> Result<Version> {
        let dir = self.model_dir(name)?;
        let _lock = self.lock(name)?;
        self.clean_staging(&dir);
        self.clean_temporaries(&dir);
        let next_path = dir.join("next");
        let from_file = match fs::read_to_string(&next_path) {
            Ok(t) => t.trim().parse::<u64>().ok(),
            Err(_) => None,
        };
        // u64::MAX is never handed out: `next` must be able to hold the number after it.
        let exhausted = || {
            WharfError::invalid(
                name,
                "every version number is used (the next would pass u64::MAX); register under a new name",
            )
        };
        let from_dirs = match self.versions(name)?.last() {
            Some(v) => v.0.checked_add(1).ok_or_else(exhausted)?,
            None => 1,
        };
        let version = Version(from_file.unwrap_or(1).max(from_dirs));
        let next = version.0.checked_add(1).ok_or_else(exhausted)?;

        let bytes = crate::artifact::encode(model)?;
        let header = crate::artifact::read_header(&bytes).map_err(|k| WharfError::artifact("<new>", k))?;
        let meta = model.metadata();
        let info = VersionInfo {
            name: name.to_string(),
            version,
            created_at: Utc::now(),
            sha256: header.sha256_hex(),
            signature: meta.signature.clone(),
            algorithm: meta.algorithm.clone(),
            metrics: meta.metrics.clone(),
            tags: meta.tags.clone(),
            aliases: Vec::new(),
        };
        let meta_json = serde_json::to_vec_pretty(&info).map_err(|e| WharfError::invalid("metadata", e.to_string()))?;

        let staging = dir.join(format!(".staging-{}", uuid::Uuid::now_v7().simple()));
        let versions_dir = dir.join("versions");
        let result = (|| -> Result<()> {
            fs::create_dir_all(&staging).map_err(|e| WharfError::io(&staging, e))?;
            fs::create_dir_all(&versions_dir).map_err(|e| WharfError::io(&versions_dir, e))?;
            write_atomic(&staging.join("model.wharf"), &bytes)?;
            write_atomic(&staging.join("meta.json"), &meta_json)?;
            let target = versions_dir.join(version.to_string());
            fs::rename(&staging, &target).map_err(|e| WharfError::io(&target, e))?;
            sync_dir(&versions_dir).map_err(|e| WharfError::io(&versions_dir, e))?;
            write_atomic(&next_path, next.to_string().as_bytes())
        })();
        if result.is_err() {
            let _ = fs::remove_dir_all(&staging);
        }
        result.map(|_| version)
    }

    fn load_selected(&self, name: &str, selector: &Selector) -> Result<Model> {
        let version = self.resolve(name, selector)?;
        let info = self.read_info(name, version, &BTreeMap::new())?;
        let path = self.version_dir(name, version)?.join("model.wharf");
        // Sized before it is read: a huge (or sparse) file is refused without being loaded.
        let bytes = crate::artifact::read_bytes(&path)?;
        let header =
            crate::artifact::read_header(&bytes).map_err(|k| WharfError::artifact(path.display().to_string(), k))?;
        if header.sha256_hex() != info.sha256 {
            return Err(WharfError::artifact(
                path.display().to_string(),
                crate::error::ArtifactError::ChecksumMismatch,
            ));
        }
        crate::artifact::decode(&bytes).map_err(|k| WharfError::artifact(path.display().to_string(), k))
    }

    fn version_info(&self, name: &str, selector: &Selector) -> Result<VersionInfo> {
        let version = self.resolve(name, selector)?;
        self.read_info(name, version, &self.aliases(name)?)
    }

    fn list(&self) -> Result<Vec<RegisteredModel>> {
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(WharfError::io(&self.root, e)),
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| validate_name(n).is_ok())
            .collect();
        names.sort();
        let mut out = Vec::new();
        for name in names {
            let versions = self.versions(&name)?;
            if versions.is_empty() {
                continue;
            }
            // One damaged file leaves its version (or the aliases) out, named, and the rest
            // of the registry listed: a listing is how one finds the damage.
            let mut unreadable = Vec::new();
            let aliases = self.aliases(&name).unwrap_or_else(|e| {
                unreadable.push(Unreadable { version: Version(0), reason: e.to_string() });
                BTreeMap::new()
            });
            let mut infos = Vec::with_capacity(versions.len());
            for version in versions {
                match self.read_info(&name, version, &aliases) {
                    Ok(info) => infos.push(info),
                    Err(e) => {
                        tracing::warn!(model = %name, %version, error = %e, "unreadable version left out of the listing");
                        unreadable.push(Unreadable { version, reason: e.to_string() });
                    }
                }
            }
            out.push(RegisteredModel { name, versions: infos, aliases, unreadable });
        }
        Ok(out)
    }

    fn set_alias(&self, name: &str, alias: &str, version: &Version) -> Result<()> {
        validate_alias(alias)?;
        let _lock = self.lock_existing(name)?;
        if !self.versions(name)?.contains(version) {
            return Err(WharfError::not_found(format!("model '{name}' version {version}")));
        }
        let mut aliases = self.aliases(name)?;
        aliases.insert(alias.to_string(), *version);
        self.write_aliases(name, &aliases)
    }

    fn delete_alias(&self, name: &str, alias: &str) -> Result<()> {
        let _lock = self.lock_existing(name)?;
        let mut aliases = self.aliases(name)?;
        if aliases.remove(alias).is_none() {
            return Err(WharfError::not_found(format!("alias '{alias}' of model '{name}'")));
        }
        self.write_aliases(name, &aliases)
    }

    fn delete_version(&self, name: &str, version: &Version) -> Result<()> {
        let dir = self.model_dir(name)?;
        let _lock = self.lock_existing(name)?;
        let target = self.version_dir(name, *version)?;
        if !target.is_dir() {
            return Err(WharfError::not_found(format!("model '{name}' version {version}")));
        }
        // Move out of `versions/` first (atomic), then delete at leisure.
        let trash = dir.join(format!(".staging-{}", uuid::Uuid::now_v7().simple()));
        fs::rename(&target, &trash).map_err(|e| WharfError::io(&target, e))?;
        let mut aliases = self.aliases(name)?;
        let before = aliases.len();
        aliases.retain(|_, v| v != version);
        if aliases.len() != before {
            self.write_aliases(name, &aliases)?;
        }
        fs::remove_dir_all(&trash).map_err(|e| WharfError::io(&trash, e))
    }

    fn store_card(&self, name: &str, version: &Version, html: &[u8]) -> Result<()> {
        // Under the name's lock, so a version being deleted is never brought back as a
        // directory holding only a card.
        let _lock = self.lock_existing(name)?;
        let dir = self.version_dir(name, *version)?;
        if !dir.join("meta.json").is_file() {
            return Err(WharfError::not_found(format!("model '{name}' version {version}")));
        }
        write_atomic(&dir.join(CARD_FILE), html)
    }

    fn card(&self, name: &str, version: &Version) -> Result<Vec<u8>> {
        let path = self.version_dir(name, *version)?.join(CARD_FILE);
        fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                WharfError::not_found(format!("the model card of model '{name}' version {version}"))
            }
            _ => WharfError::io(&path, e),
        })
    }
}

/// The model card's file name in a version's directory.
const CARD_FILE: &str = "card.html";
