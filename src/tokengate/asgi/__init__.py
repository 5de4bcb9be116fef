"""The ASGI kit every tokengate app shares: types, lifespan, body reading, response sending.

One copy each, used by the authorization server, the gateway and the resource-server adapters.
"""
