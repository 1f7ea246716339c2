//! A private certificate authority for one test process, made with the
//! `openssl` command line tool (`openssl req`, `openssl x509`): a CA, a
//! server certificate it signs for `localhost` only (no IP address, so a
//! connection to `127.0.0.1` does not match it), client certificates whose
//! common name is a role, and a second, unrelated CA. EC P-256 keys, two
//! days of validity.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::cluster::check;

/// The files, in a temporary directory that lives as long as this value.
pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// Makes both CAs and the server certificate; client certificates are
    /// made by [`Pki::client`].
    pub fn new() -> Pki {
        let pki = Pki {
            dir: tempfile::Builder::new()
                .prefix("hsk-pki-")
                .tempdir()
                .expect("a temporary directory for the test CA"),
        };
        pki.make_ca("ca", "hsk test CA");
        pki.make_ca("other_ca", "hsk unrelated CA");
        pki.make_signed(
            "server",
            "localhost",
            "ca",
            Some("subjectAltName=DNS:localhost"),
        );
        pki
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA that signed the server's certificate (and the clients').
    pub fn ca(&self) -> PathBuf {
        self.path("ca.crt")
    }

    /// A CA that signed nothing the server shows.
    pub fn other_ca(&self) -> PathBuf {
        self.path("other_ca.crt")
    }

    pub fn server_cert(&self) -> PathBuf {
        self.path("server.crt")
    }

    pub fn server_key(&self) -> PathBuf {
        self.path("server.key")
    }

    /// A client certificate with common name `role`, signed by `ca`
    /// (`"ca"` or `"other_ca"`): its certificate and key (mode 0600, as
    /// libpq requires of a key file).
    /// Each call makes new files, so tests running at once never read a
    /// file another is writing.
    pub fn client(&self, role: &str, ca: &str) -> (PathBuf, PathBuf) {
        static MADE: AtomicUsize = AtomicUsize::new(0);
        let n = MADE.fetch_add(1, Ordering::SeqCst);
        let name = format!("client_{role}_{ca}_{n}");
        self.make_signed(&name, role, ca, None);
        (
            self.path(&format!("{name}.crt")),
            self.path(&format!("{name}.key")),
        )
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn make_ca(&self, name: &str, common_name: &str) {
        let out = Command::new("openssl")
            .args(["req", "-x509", "-nodes", "-days", "2"])
            .args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
            .args(["-subj", &format!("/CN={common_name}")])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .arg("-keyout")
            .arg(self.path(&format!("{name}.key")))
            .arg("-out")
            .arg(self.path(&format!("{name}.crt")))
            .output()
            .expect("the `openssl` command line tool is needed to make a test CA");
        check("openssl req -x509", &out);
    }

    /// A key and a certificate for `common_name` signed by CA `ca`, with
    /// the extension line `extension` if any.
    fn make_signed(&self, name: &str, common_name: &str, ca: &str, extension: Option<&str>) {
        let key = self.path(&format!("{name}.key"));
        let csr = self.path(&format!("{name}.csr"));
        let out = Command::new("openssl")
            .args(["req", "-new", "-nodes"])
            .args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
            .args(["-subj", &format!("/CN={common_name}")])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr)
            .output()
            .expect("openssl req");
        check("openssl req -new", &out);
        let mut x509 = Command::new("openssl");
        x509.args(["x509", "-req", "-days", "2", "-set_serial"])
            .arg(serial(name))
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(self.path(&format!("{ca}.crt")))
            .arg("-CAkey")
            .arg(self.path(&format!("{ca}.key")))
            .arg("-out")
            .arg(self.path(&format!("{name}.crt")));
        if let Some(extension) = extension {
            let file = self.path(&format!("{name}.ext"));
            std::fs::write(&file, format!("{extension}\n")).expect("write the extension file");
            x509.arg("-extfile").arg(file);
        }
        check("openssl x509 -req", &x509.output().expect("openssl x509"));
        set_private(&key);
    }
}

/// A serial number per certificate name, so no two certificates of a CA
/// share one.
fn serial(name: &str) -> String {
    let sum = name
        .bytes()
        .fold(1u64, |h, b| h.wrapping_mul(131).wrapping_add(u64::from(b)));
    (sum % 1_000_000_007).to_string()
}

fn set_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}
