//! Where secrets (API keys, signing keys, the bot token) come from: never the config or the
//! repository, always a name the config gives, looked up in this order:
//!
//! 1. `$CREDENTIALS_DIRECTORY/NAME`: a systemd credential (`LoadCredential=NAME:/path` in the
//!    unit), which systemd hands to the service alone;
//! 2. the environment variable `NAME`;
//! 3. the file the environment variable `NAME_FILE` names.
//!
//! A file is read only when nobody but its owner may read or write it (mode `0600`, `0400`,
//! …): a secret in a group- or world-readable file is refused with a message that gives the
//! file's mode and how to fix it, since others on the host may already have read it. Trailing
//! whitespace (the newline an editor adds) is dropped from a file's content. Nothing here
//! prints a secret's value.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// Found nowhere.
    #[error(
        "{name}: not set (looked for $CREDENTIALS_DIRECTORY/{name}, the environment variable \
         {name}, and a file named by {name}_FILE)"
    )]
    Missing {
        /// The secret's name.
        name: String,
    },
    /// Set, but empty.
    #[error("{name}: empty (in {place})")]
    Empty {
        /// The secret's name.
        name: String,
        /// Where it was found.
        place: String,
    },
    /// Not UTF-8 text.
    #[error("{name}: not UTF-8 text (in {place})")]
    NotText {
        /// The secret's name.
        name: String,
        /// Where it was found.
        place: String,
    },
    /// A file others may read or write.
    #[error(
        "{name}: {} has mode {mode:04o}, so users other than its owner may read or change it; \
         a secret file must be owner-only (chmod 600 {}), and the secret may need replacing",
        path.display(),
        path.display()
    )]
    LoosePermissions {
        /// The secret's name.
        name: String,
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A file that could not be read.
    #[error("{name}: {}: {source}", path.display())]
    Io {
        /// The secret's name.
        name: String,
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

/// The secret `name` from this process's environment. See the module docs.
pub fn read_secret(name: &str) -> Result<String, SecretError> {
    read_secret_with(name, |var| std::env::var_os(var))
}

/// [`read_secret`] with `env` standing for the environment.
pub fn read_secret_with(
    name: &str,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<String, SecretError> {
    if let Some(dir) = env("CREDENTIALS_DIRECTORY") {
        let path = Path::new(&dir).join(name);
        if path.exists() {
            return read_file(name, &path);
        }
    }
    if let Some(value) = env(name) {
        let place = format!("the environment variable {name}");
        let value = value.into_string().map_err(|_| SecretError::NotText {
            name: name.to_owned(),
            place: place.clone(),
        })?;
        if value.is_empty() {
            return Err(SecretError::Empty {
                name: name.to_owned(),
                place,
            });
        }
        return Ok(value);
    }
    if let Some(path) = env(&format!("{name}_FILE")) {
        return read_file(name, Path::new(&path));
    }
    Err(SecretError::Missing {
        name: name.to_owned(),
    })
}

/// An owner-only file's content, trailing whitespace dropped.
fn read_file(name: &str, path: &Path) -> Result<String, SecretError> {
    let io = |source| SecretError::Io {
        name: name.to_owned(),
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SecretError::LoosePermissions {
            name: name.to_owned(),
            path: path.to_path_buf(),
            mode,
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let place = path.display().to_string();
    let text = String::from_utf8(bytes).map_err(|_| SecretError::NotText {
        name: name.to_owned(),
        place: place.clone(),
    })?;
    let text = text.trim_end();
    if text.is_empty() {
        return Err(SecretError::Empty {
            name: name.to_owned(),
            place,
        });
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Dir(PathBuf);

    impl Dir {
        fn new(tag: &str) -> Self {
            let d =
                std::env::temp_dir().join(format!("pinion-secrets-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).expect("dir");
            Dir(d)
        }

        fn file(&self, name: &str, text: &str, mode: u32) -> PathBuf {
            let p = self.0.join(name);
            std::fs::write(&p, text).expect("write");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
            p
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + use<> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn a_systemd_credential_comes_first_then_the_variable_then_its_file() {
        let d = Dir::new("order");
        d.file("KEY", "from-credentials\n", 0o400);
        let other = d.file("key.txt", "from-file\n", 0o600);
        let dir = d.0.to_str().expect("utf-8");
        let file = other.to_str().expect("utf-8");
        let all = env(&[
            ("CREDENTIALS_DIRECTORY", dir),
            ("KEY", "from-env"),
            ("KEY_FILE", file),
        ]);
        assert_eq!(
            read_secret_with("KEY", all).expect("read"),
            "from-credentials"
        );
        let no_dir = env(&[("KEY", "from-env"), ("KEY_FILE", file)]);
        assert_eq!(read_secret_with("KEY", no_dir).expect("read"), "from-env");
        let only_file = env(&[("KEY_FILE", file)]);
        assert_eq!(
            read_secret_with("KEY", only_file).expect("read"),
            "from-file"
        );
        // A credentials directory without this name: the variable is used.
        let elsewhere = env(&[("CREDENTIALS_DIRECTORY", dir), ("OTHER", "x")]);
        assert_eq!(read_secret_with("OTHER", elsewhere).expect("read"), "x");
        match read_secret_with("NONE", env(&[])) {
            Err(e @ SecretError::Missing { .. }) => {
                let m = e.to_string();
                assert!(
                    m.contains("CREDENTIALS_DIRECTORY") && m.contains("NONE_FILE"),
                    "{m}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_file_others_may_read_is_refused_saying_why() {
        let d = Dir::new("loose");
        let path = d.file("secret.pem", "top secret", 0o644);
        let e = read_secret_with(
            "SECRET",
            env(&[("SECRET_FILE", path.to_str().expect("utf-8"))]),
        )
        .expect_err("refused");
        let m = e.to_string();
        assert!(
            matches!(e, SecretError::LoosePermissions { mode: 0o644, .. }),
            "{e:?}"
        );
        assert!(m.contains("mode 0644") && m.contains("chmod 600"), "{m}");
        assert!(!m.contains("top secret"), "the secret is never shown: {m}");
        // Group-readable is as bad; in the credentials directory too.
        d.file("SECRET", "top secret", 0o640);
        let e = read_secret_with(
            "SECRET",
            env(&[("CREDENTIALS_DIRECTORY", d.0.to_str().expect("utf-8"))]),
        )
        .expect_err("refused");
        assert!(
            matches!(e, SecretError::LoosePermissions { mode: 0o640, .. }),
            "{e:?}"
        );
    }

    #[test]
    fn empty_secrets_are_refused() {
        let d = Dir::new("empty");
        let path = d.file("blank", "\n", 0o600);
        assert!(matches!(
            read_secret_with("S", env(&[("S_FILE", path.to_str().expect("utf-8"))])),
            Err(SecretError::Empty { .. })
        ));
        assert!(matches!(
            read_secret_with("S", env(&[("S", "")])),
            Err(SecretError::Empty { .. })
        ));
    }
}
