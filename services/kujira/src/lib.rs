//! kujira's composition, as a library: the binary (`main.rs`) and the black-box
//! tests run the very same app ([`serve::app`]) and database setup ([`db`]).

pub mod db;
pub mod serve;
