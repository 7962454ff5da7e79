//! Black-box tests and benchmarks of kujira: they drive the real routers, workers
//! and binary against a real PostgreSQL (see `kujira_pgembed::testing`).
