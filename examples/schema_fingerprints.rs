//! Regenerates the committed schema fingerprints,
//! `src/schema/fingerprint_<backend>.txt`, from a freshly migrated database
//! of each enabled backend (PostgreSQL in a throwaway schema of
//! `POSTGRES_TEST_URL`):
//!
//! ```sh
//! cargo run --example schema_fingerprints --features postgres
//! ```
//!
//! Review the diff before committing: it is the schema change.

use std::path::Path;

use handshake_storage::conformance::TestTarget;

// With one backend feature the loop has one element.
#[allow(clippy::single_element_loop)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    for backend in [
        #[cfg(feature = "sqlite")]
        "sqlite",
        #[cfg(feature = "postgres")]
        "postgres",
    ] {
        let harness = TestTarget::standard(backend).harness()?;
        let fingerprint = harness.store().schema_fingerprint()?;
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/schema")
            .join(format!("fingerprint_{backend}.txt"));
        std::fs::write(&path, fingerprint.to_file_text())?;
        println!("{backend}: {} -> {}", fingerprint.hash, path.display());
    }
    Ok(())
}
