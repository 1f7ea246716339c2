// Rebuild when a migration changes: embed_migrations! reads these at
// compile time.
fn main() {
    println!("cargo:rerun-if-changed=migrations_sqlite");
    println!("cargo:rerun-if-changed=migrations_postgres");
}
