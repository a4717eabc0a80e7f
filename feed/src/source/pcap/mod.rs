//! pcap and pcapng capture replay: TCP reassembly and WebSocket frame decoding.
