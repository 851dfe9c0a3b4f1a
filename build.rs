//! Compiles every `proto/*.proto` (one file per node-to-node service) with tonic-prost-build.
//! Each file has its own package (`raftka.raft`, `raftka.controller`, ...), included by
//! `src/rpc/mod.rs`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let mut protos = Vec::new();
    for entry in std::fs::read_dir("proto")? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "proto") {
            println!("cargo:rerun-if-changed={}", path.display());
            protos.push(path);
        }
    }
    // Sorted, so the generated code does not depend on directory order.
    protos.sort();
    // Replicated batches as `Bytes`: the leader sends what it read without copying it into a
    // `Vec`, and the follower's decoder hands out a slice of the received frame.
    tonic_prost_build::configure()
        .bytes(".raftka.replica.PartitionReply.records")
        .compile_protos(&protos, &[std::path::PathBuf::from("proto")])?;
    Ok(())
}
