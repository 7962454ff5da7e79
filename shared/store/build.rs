fn main() {
    // New migration files must rebuild the crate, or `sqlx::migrate!` misses them.
    println!("cargo:rerun-if-changed=migrations");
}
