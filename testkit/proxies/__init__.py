"""Proxies on 127.0.0.1 in front of a test server: DelayProxy (requests held back at random),
HalfRangeProxy (ranged GETs answered short), FaultProxy (lost, cut, made-up or damaged
traffic), ForwardProxy (forward_proxy.py: an HTTP forward proxy with CONNECT and Basic proxy
credentials that resolves made-up host names), TlsFront (tls_front.py: a TLS terminator with
a self-signed certificate for one name), throttle_proxy.py (a bandwidth-limited link, run
as its own process) and counting_proxy.py (an HTTP/1.1 reverse proxy, its own process too,
that counts requests and body bytes per second and can hold every request: a slow
destination). relay.py holds the TCP server plumbing DelayProxy, ForwardProxy and
TlsFront share (RelayServer)."""
