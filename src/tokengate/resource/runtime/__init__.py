"""The resource server's one async runtime (asyncio): what the protocol layer decides, done.

`validator` is the composition root: it makes one `Stats`, the `cache`, the `http` transport
(`transport`: pooled keep-alive connections), the introspection `client`, the `singleflight`
and the revocation-event `subscriber`, and hands the counters to each. Every adapter drives a
validator; thread-based ones through its `loop_thread`. `redis` is the optional shared cache.
"""
