//! Four-letter words (`ruok`, `srvr`, `stat`, `mntr`, `conf`, `envi`): a connection whose first
//! four bytes are ASCII letters instead of a length gets a text answer and is closed.

/// What the words report about this node.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    pub node_id: i32,
    pub mode: &'static str,
    pub zxid: u64,
    pub node_count: usize,
    pub connections: usize,
    pub sessions: usize,
    pub ephemerals: usize,
    pub watches: usize,
    pub received: u64,
    pub sent: u64,
    pub client_port: u16,
    pub packet_bytes_max: usize,
}

pub const VERSION: &str = "3.8.0-raftka, built on 01/01/2024 00:00 GMT";

/// Whether the first four bytes of a connection are a four-letter word rather than a length.
pub fn is_word(head: [u8; 4]) -> bool {
    head.iter().all(u8::is_ascii_lowercase)
}

/// The answer to `word`, or `None` for an unknown word (the connection is just closed).
pub fn answer(word: [u8; 4], info: &ServerInfo) -> Option<String> {
    let srvr = || {
        format!(
            "Zookeeper version: {VERSION}\nLatency min/avg/max: 0/0.0/0\nReceived: {}\nSent: {}\nConnections: {}\nOutstanding: 0\nZxid: {:#x}\nMode: {}\nNode count: {}\n",
            info.received, info.sent, info.connections, info.zxid, info.mode, info.node_count
        )
    };
    let text = match &word {
        b"ruok" => "imok".to_owned(),
        b"srvr" => srvr(),
        b"stat" => {
            let s = srvr();
            let (head, tail) = s.split_once("Latency").unwrap_or((&s, ""));
            format!("{head}Clients:\n\nLatency{tail}")
        }
        b"mntr" => format!(
            "zk_version\t{VERSION}\nzk_server_state\t{}\nzk_znode_count\t{}\nzk_watch_count\t{}\nzk_ephemerals_count\t{}\nzk_num_alive_connections\t{}\nzk_outstanding_requests\t0\nzk_packets_received\t{}\nzk_packets_sent\t{}\nzk_global_sessions\t{}\n",
            info.mode, info.node_count, info.watches, info.ephemerals, info.connections, info.received, info.sent, info.sessions
        ),
        b"conf" => format!(
            "clientPort={}\nserverId={}\ntickTime=2000\nmaxClientCnxns=0\nminSessionTimeout=4000\nmaxSessionTimeout=40000\njute.maxbuffer={}\n",
            info.client_port, info.node_id, info.packet_bytes_max
        ),
        b"envi" => format!("Environment:\nzookeeper.version={VERSION}\nhost.name=raftka-{}\n", info.node_id),
        _ => return None,
    };
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        let info = ServerInfo {
            node_id: 1,
            mode: "standalone",
            zxid: 5,
            node_count: 3,
            connections: 1,
            sessions: 1,
            ephemerals: 0,
            watches: 0,
            received: 1,
            sent: 1,
            client_port: 2181,
            packet_bytes_max: 1,
        };
        assert!(is_word(*b"ruok") && !is_word([0, 0, 0, 45]));
        assert_eq!(answer(*b"ruok", &info).as_deref(), Some("imok"));
        assert!(answer(*b"srvr", &info)
            .is_some_and(|s| s.contains("Mode: standalone") && s.contains("Zxid: 0x5")));
        assert!(answer(*b"stat", &info).is_some_and(|s| s.contains("Clients:")));
        assert!(answer(*b"mntr", &info).is_some_and(|s| s.contains("zk_znode_count\t3")));
        assert!(answer(*b"conf", &info).is_some_and(|s| s.contains("maxSessionTimeout=40000")));
        assert!(answer(*b"xxxx", &info).is_none());
    }
}
