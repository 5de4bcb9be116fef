"""Client management: the operations the CLI, the management API, RFC 7591/7592 registration
and `tokengate apply` share, each one audited in the transaction of its change."""
