"""Rules of the edge, sans-I/O, shared by every component that decides there (the built-in
gateway, the `tokengate authz` decision service, the generated proxy configurations):
which claim goes in which identity header (`claims`), which request targets are ambiguous
(`target`), and what the original request was when a proxy asks on its behalf (`original`).
"""
