//! Whole-system tests: the real `syncman` binary, real sockets, the client crate.
//! One test binary with a module tree (faster to link than one binary per file).

mod integration {
    pub mod admission;
    pub mod bad_input;
    pub mod blocking;
    pub mod blocking_facade;
    pub mod cancel_safety;
    pub mod cli;
    pub mod config;
    pub mod cpython_auth;
    pub mod cpython_dialect;
    pub mod heartbeat;
    pub mod lifecycle;
    pub mod metrics;
    pub mod objects;
    pub mod processes;
    pub mod python_examples;
    pub mod quotas;
    pub mod registered;
    pub mod tls;
}
