// `sqlx::migrate!` embeds the migration scripts at compile time; a script added or changed must
// rebuild the crate (sqlx's documented build script).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
