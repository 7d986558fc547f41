"""Proxies on 127.0.0.1 in front of a test server: DelayProxy (requests held back at random),
HalfRangeProxy (ranged GETs answered short), FaultProxy (lost, cut, made-up or damaged
traffic) and throttle_proxy.py (a bandwidth-limited link, run as its own process)."""
