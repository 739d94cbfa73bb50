//! TLS certificates and keys read from PEM files, for the node and the client alike (the
//! `tls` feature). Each error names the file and what is wrong with it, so an operator who
//! passed the wrong path or the wrong kind of file is told so at start, not at the first
//! handshake.

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;

/// Why a PEM file cannot be used. `what` says which file it was ("certificate", "private
/// key", "CA").
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    #[error("cannot read the {what} file {}: {source}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the {what} file {} is not valid PEM: {reason}", path.display())]
    Invalid {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("the {what} file {} holds no {expected} (PEM \"BEGIN {expected}\" section)", path.display())]
    Missing {
        what: &'static str,
        path: PathBuf,
        expected: &'static str,
    },
    #[error("the CA file {} holds a certificate that cannot be a trust anchor: {reason}", path.display())]
    BadAnchor { path: PathBuf, reason: String },
}

/// The certificate chain in `path`, leaf first, as PEM `CERTIFICATE` sections.
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemError> {
    chain(path, "certificate")
}

/// The private key in `path`: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`) or SEC1
/// (`EC PRIVATE KEY`).
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, PemError> {
    const WHAT: &str = "private key";
    let bytes = read(path, WHAT)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => PemError::Missing {
            what: WHAT,
            path: path.to_owned(),
            expected: "PRIVATE KEY",
        },
        e => invalid(path, WHAT, e),
    })
}

/// The certificates in `path` as trust anchors: peers are trusted when their certificate
/// chains up to one of them.
pub fn root_store(path: &Path) -> Result<RootCertStore, PemError> {
    let mut roots = RootCertStore::empty();
    for cert in chain(path, "CA")? {
        roots.add(cert).map_err(|e| PemError::BadAnchor {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

/// Every `CERTIFICATE` section of `path`; at least one.
fn chain(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let bytes = read(path, what)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(path, what, e))?;
    if certs.is_empty() {
        return Err(PemError::Missing {
            what,
            path: path.to_owned(),
            expected: "CERTIFICATE",
        });
    }
    Ok(certs)
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, PemError> {
    std::fs::read(path).map_err(|source| PemError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

fn invalid(path: &Path, what: &'static str, e: pem::Error) -> PemError {
    PemError::Invalid {
        what,
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch folder for one test, removed at the end.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("syncman-pem-{}-{name}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, contents).unwrap();
            path
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn generated() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["node.test".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn good_files_load() {
        let dir = Scratch::new("good");
        let (cert, key) = generated();
        let cert = dir.file("cert.pem", cert.as_bytes());
        let key = dir.file("key.pem", key.as_bytes());
        assert_eq!(certificates(&cert).unwrap().len(), 1);
        assert!(matches!(
            private_key(&key).unwrap(),
            PrivateKeyDer::Pkcs8(_)
        ));
        assert_eq!(root_store(&cert).unwrap().len(), 1);
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let dir = Scratch::new("bad");
        let (cert, key) = generated();
        let cert = dir.file("cert.pem", cert.as_bytes());
        let key = dir.file("key.pem", key.as_bytes());
        let missing = dir.0.join("nope.pem");

        let e = certificates(&missing).unwrap_err().to_string();
        assert!(
            e.contains("cannot read the certificate file") && e.contains("nope.pem"),
            "{e}"
        );
        // The files swapped: a key where a certificate belongs and the other way round.
        let e = certificates(&key).unwrap_err().to_string();
        assert!(
            e.contains("key.pem") && e.contains("holds no CERTIFICATE"),
            "{e}"
        );
        let e = private_key(&cert).unwrap_err().to_string();
        assert!(
            e.contains("cert.pem") && e.contains("holds no PRIVATE KEY"),
            "{e}"
        );
        let broken = dir.file(
            "broken.pem",
            b"-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
        );
        let e = root_store(&broken).unwrap_err().to_string();
        assert!(
            e.contains("CA file") && e.contains("broken.pem") && e.contains("not valid PEM"),
            "{e}"
        );
        let garbage = dir.file(
            "garbage.pem",
            b"-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n",
        );
        let e = root_store(&garbage).unwrap_err().to_string();
        assert!(
            e.contains("garbage.pem") && e.contains("cannot be a trust anchor"),
            "{e}"
        );
    }
}
