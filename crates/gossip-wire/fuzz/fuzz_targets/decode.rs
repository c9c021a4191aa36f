//! Feeds arbitrary bytes to every decoder: none may panic.
#![no_main]

use consul_sec_gossip_wire::serf::{SerfMessage, decode_tags};
use consul_sec_gossip_wire::{decode_packet, decode_stream_message, stream_frame_len};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode_packet(data);
    let _ = decode_stream_message(data);
    let _ = stream_frame_len(data);
    let _ = SerfMessage::decode(data);
    let _ = decode_tags(data);
});
