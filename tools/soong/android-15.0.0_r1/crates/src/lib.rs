//! Nothing: the package exists for its dependencies (see Cargo.toml).
#![no_std]
