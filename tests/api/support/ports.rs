//! A free port, for every test target (tests/properties.rs includes this file by path).

/// A port that was free a moment ago (the host picks ports the same way). Only for a port that
/// must be closed, or for a server that takes no port 0: a handler takes port 0 and says which.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
