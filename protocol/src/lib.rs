//! The syncman wire: everything that crosses a socket, and nothing else.
//!
//! # Layout
//! - [`frame`]: CPython's `multiprocessing.connection` framing as a tokio-util codec, with a
//!   size limit checked before any memory is reserved.
//! - [`handshake`]: CPython's mutual HMAC challenge-response (SHA-256, legacy MD5).
//! - [`message`]: the native dialect's envelopes (hello, request, cancel, release, response).
//! - [`opening`]: a native client's opening: the handshake, then the hello.
//! - [`value`]: the value model: MessagePack (`value/msgpack.rs`) and Python's equality,
//!   ordering, hashing and repr over it (`value/python.rs`).
//! - [`error`]: remote error kinds named after Python's exceptions.
//! - `tls` (feature `tls`): TLS certificates, keys and CA files read from PEM, for the node
//!   and the client.
//!
//! The server and client crates depend on this one and never on each other.

pub mod error;
pub mod frame;
/// The fuzz targets' properties (`fuzz/`), shared with the corpus replay test.
#[doc(hidden)]
pub mod fuzzing;
pub mod handshake;
pub mod message;
pub mod opening;
pub mod pickle;
#[cfg(feature = "tls")]
pub mod tls;
pub mod value;

pub use error::{ErrorKind, RemoteError};
pub use frame::{FrameCodec, FrameError, DEFAULT_MAX_FRAME, HANDSHAKE_MAX_FRAME};
pub use message::{ArgList, Args};
pub use value::Value;
